"""embedding_guard."""
