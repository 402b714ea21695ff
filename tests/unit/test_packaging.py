"""The set-up files agree with each other: constraints, setup.py, Dockerfile, finder."""

import pathlib
import re
import subprocess
import sys
from importlib import metadata

REPO = pathlib.Path(__file__).resolve().parents[2]
FAMILY = {
    "tfx",
    "tensorflow",
    "tensorflow-transform",
    "tensorflow-data-validation",
    "tfx-bsl",
    "ml-metadata",
    "tensorflow-metadata",
    "apache-beam",
}


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def test_constraints_pin_the_whole_tfx_family():
    assert _constraints() == {
        "tfx": "1.16.0",
        "tensorflow": "2.16.2",
        "tensorflow-transform": "1.16.0",
        "tensorflow-data-validation": "1.16.1",
        "tfx-bsl": "1.16.1",
        "ml-metadata": "1.16.0",
        "tensorflow-metadata": "1.16.1",
        "apache-beam": "2.60.0",
    }


def test_installed_distribution_requires_the_constrained_versions():
    required = {}
    for requirement in metadata.requires("tfx-embedding-guard"):
        if "extra ==" in requirement:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]+\])?==([^;\s]+)", requirement.strip())
        assert match, f"unpinned requirement {requirement!r}"
        required[match.group(1).lower()] = match.group(3)
    assert set(required) == FAMILY
    assert required == _constraints()


def test_installed_versions_match_constraints():
    for name, version in _constraints().items():
        assert metadata.version(name) == version, name


def test_dockerfile_base_tag_and_install_follow_constraints():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+tensorflow/tfx:(\S+)\s*$", dockerfile, re.MULTILINE)
    assert base, "Dockerfile must build FROM tensorflow/tfx:<tfx version>"
    assert base.group(1) == _constraints()["tfx"]
    install = re.search(r"^RUN .*pip install.*$", dockerfile, re.MULTILINE)
    assert install and "-c constraints.txt" in install.group(0)
    assert re.search(r"^COPY .*constraints\.txt", dockerfile, re.MULTILINE)
    # No version may be pinned in the Dockerfile itself: constraints.txt is the one source.
    assert not re.search(r"==\d", dockerfile)


def _finder(env, tmp_path):
    return subprocess.run(
        ["/bin/sh", str(REPO / "scripts" / "find-python310")],
        env={"HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_finder_rejects_a_bad_python_variable(tmp_path):
    result = _finder({"PYTHON": "/nonexistent/python3.10", "PATH": "/usr/bin:/bin"}, tmp_path)
    assert result.returncode == 1
    assert "PYTHON=/nonexistent/python3.10" in result.stderr


def test_finder_skips_a_failing_shim_and_finds_pyenv_version(tmp_path):
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "python3.10"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.10: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    pyenv_bin = tmp_path / "pyenv" / "versions" / "3.10.99" / "bin"
    pyenv_bin.mkdir(parents=True)
    # The interpreter running the tests is a working 3.10; expose it where pyenv keeps one.
    (pyenv_bin / "python3.10").symlink_to(sys.executable)
    result = _finder(
        {"PATH": f"{shims}:/usr/bin:/bin", "PYENV_ROOT": str(tmp_path / "pyenv")}, tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(pyenv_bin / "python3.10")


def test_finder_explains_what_to_install_when_nothing_is_found(tmp_path):
    result = _finder({"PATH": "/nonexistent", "PYENV_ROOT": str(tmp_path / "none")}, tmp_path)
    assert result.returncode == 1
    assert "Install Python 3.10" in result.stderr
