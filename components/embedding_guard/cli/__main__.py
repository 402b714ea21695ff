"""`python -m embedding_guard.cli`: the console script, as `embedding-guard` runs it."""

from embedding_guard.cli.main import console_main

if __name__ == "__main__":
    console_main()
