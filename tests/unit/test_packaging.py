"""The set-up files agree with each other: constraints, setup.py, lock, Dockerfile, scripts."""

from __future__ import annotations

import ast
import os
import pathlib
import re
import subprocess
import sys
import sysconfig
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import embedding_guard

REPO = pathlib.Path(__file__).resolve().parents[2]
PROJECT = "tfx-embedding-guard"
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def _constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.fullmatch(line)
        assert match, f"constraints.txt: {line!r} is not NAME==VERSION"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"constraints.txt pins {name!r} twice"
        pins[name] = match.group(2)
    return pins


def _setup_requirements() -> tuple[list[Requirement], dict[str, list[Requirement]]]:
    # Read from setup.py itself: the installed metadata may be an older editable install.
    tree = ast.parse((REPO / "setup.py").read_text())
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in {"INSTALL_REQUIRES", "EXTRAS_REQUIRE"}
    }
    install = [Requirement(text) for text in values["INSTALL_REQUIRES"]]
    extras = {
        extra: [Requirement(text) for text in texts]
        for extra, texts in values["EXTRAS_REQUIRE"].items()
    }
    return install, extras


def _installed() -> dict[str, str]:
    versions: dict[str, str] = {}
    # Only what pip installed: setuptools puts its vendored packages' metadata on
    # sys.path once it is imported, and those are not the environment's.
    for distribution in metadata.distributions(path=[sysconfig.get_paths()["purelib"]]):
        name = canonicalize_name(distribution.metadata["Name"])
        # The first on sys.path wins, as it does for imports.
        versions.setdefault(name, distribution.version)
    versions.pop(PROJECT, None)
    return versions


def test_constraints_pin_neither_extras_nor_the_project():
    pins = _constraints()
    # pip rejects a constraint with extras; apache-beam[gcp] is asked for in setup.py.
    assert "apache-beam" in pins
    assert PROJECT not in pins
    header = (REPO / "constraints.txt").read_text().split("\n", 1)[0]
    assert header.startswith("#")


def test_every_installed_distribution_is_pinned_at_its_version():
    pins = _constraints()
    unpinned = sorted(set(_installed()) - set(pins))
    assert not unpinned, f"installed but not in constraints.txt (run `make lock`): {unpinned}"
    differ = {
        name: (version, pins[name])
        for name, version in _installed().items()
        if pins[name] != version
    }
    assert not differ, f"installed version != constraints.txt (reinstall with `make`): {differ}"


def test_requirements_are_ranges_that_the_pins_satisfy():
    install, extras = _setup_requirements()
    pins = _constraints()
    for requirement in [*install, *(r for group in extras.values() for r in group)]:
        operators = {spec.operator for spec in requirement.specifier}
        assert "==" not in operators, f"{requirement}: exact pins go in constraints.txt"
        assert ">=" in operators, f"{requirement}: state the lowest version that works"
        # What users install gets an upper bound too; test tools follow the lock only.
        if requirement in install:
            assert "<" in operators, f"{requirement}: state the first version that breaks"
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} has no pin in constraints.txt"
        assert requirement.specifier.contains(pins[name]), (str(requirement), pins[name])


def test_the_tfx_family_ranges_stay_on_one_minor_version():
    install, _ = _setup_requirements()
    by_name = {canonicalize_name(r.name): r for r in install}
    family = ["tfx", "tensorflow-transform", "tensorflow-data-validation", "tfx-bsl"]
    family += ["ml-metadata", "tensorflow-metadata"]
    for name in family:
        assert not by_name[name].specifier.contains("1.17.0"), by_name[name]
        assert by_name[name].specifier.contains(_constraints()[name]), by_name[name]
    assert "gcp" in by_name["apache-beam"].extras


def test_kfp_extra_is_tfx_own_kfp_extra_and_kfp_is_pinned():
    _, extras = _setup_requirements()
    (tfx_kfp,) = extras["kfp"]
    assert canonicalize_name(tfx_kfp.name) == "tfx"
    assert tfx_kfp.extras == {"kfp"}
    # TFX's [kfp] extra is `kfp>=2` and `kfp-pipeline-spec`: both under the lock.
    pins = _constraints()
    assert pins["kfp"].split(".")[0] == "2"
    assert "kfp-pipeline-spec" in pins


def test_version_is_defined_once_and_setup_reads_it():
    setup_source = (REPO / "setup.py").read_text()
    assert not re.search(r"""version\s*=\s*["']\d""", setup_source)
    result = subprocess.run(
        [sys.executable, "setup.py", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == embedding_guard.__version__
    definitions = [
        path
        for path in (REPO / "components" / "embedding_guard").glob("*.py")
        if re.search(r"^__version__\s*=", path.read_text(), re.MULTILINE)
    ]
    assert [path.name for path in definitions] == ["__init__.py"]


def test_lock_script_writes_every_installed_distribution(tmp_path):
    out = tmp_path / "constraints.txt"
    result = subprocess.run(
        [str(REPO / "scripts" / "lock"), sys.executable],
        env={**os.environ, "LOCK_OUTPUT": str(out)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# ") and "make lock" in out.read_text()
    written = {}
    for line in lines:
        if not line.startswith("#"):
            name, version = line.split("==")
            written[canonicalize_name(name)] = version
    assert written == _installed()


def test_lock_script_refuses_a_python_that_does_not_run(tmp_path):
    out = tmp_path / "constraints.txt"
    result = subprocess.run(
        [str(REPO / "scripts" / "lock"), str(tmp_path / "no-python")],
        env={**os.environ, "LOCK_OUTPUT": str(out)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "is not a working Python" in result.stderr
    assert not out.exists()


def test_dockerfile_base_tag_and_install_follow_constraints():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+tensorflow/tfx:(\S+)\s*$", dockerfile, re.MULTILINE)
    assert base, "Dockerfile must build FROM tensorflow/tfx:<tfx version>"
    assert base.group(1) == _constraints()["tfx"]
    install = re.search(r"^RUN .*pip install.*$", dockerfile, re.MULTILINE)
    assert install and "-c constraints.txt" in install.group(0)
    copied = re.search(r"^COPY (.*) \./$", dockerfile, re.MULTILINE)
    # setup.py reads README.md; pyproject.toml names the build backend.
    assert copied
    assert {"setup.py", "pyproject.toml", "constraints.txt", "README.md"} <= set(
        copied.group(1).split()
    )
    # No version may be pinned in the Dockerfile itself: constraints.txt is the one source.
    assert not re.search(r"==\d", dockerfile)


def _browser_deps(chromium: pathlib.Path, path: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/sh", str(REPO / "scripts" / "browser-deps")],
        env={"CHROMIUM": str(chromium), "PATH": path},
        capture_output=True,
        text=True,
        check=False,
    )


def test_browser_deps_does_nothing_when_chromium_is_there(tmp_path):
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    # No PATH at all: the script must not need apt-get (or anything) then.
    result = _browser_deps(chromium, "/nonexistent")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_browser_deps_says_what_to_install_without_apt_get(tmp_path):
    result = _browser_deps(tmp_path / "missing-chromium", "/nonexistent")
    assert result.returncode == 1
    assert "apt-get is not available" in result.stderr
    assert str(tmp_path / "missing-chromium") in result.stderr


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


def test_lint_config_rejects_evaluating_or_unpickling_artifacts(tmp_path):
    # Replaces a hand-written AST scan: ruff's S rules and banned-api do the job in `make lint`.
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import marshal\nimport pickle\n\nimport yaml\n\n\n"
        "def load(text):\n"
        "    eval(text)\n"
        "    exec(text)\n"
        "    return pickle.loads(text), marshal.loads(text), yaml.load(text)\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--config",
            str(REPO / "pyproject.toml"),
            "--output-format",
            "concise",
            "--no-cache",
            str(probe),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    found = {
        (int(line.split(":")[1]), line.split(" ")[1])
        for line in result.stdout.splitlines()
        if line.startswith(str(probe))
    }
    assert {
        (1, "TID251"),
        (2, "TID251"),
        (4, "TID251"),
        (8, "S307"),
        (9, "S102"),
        (10, "S301"),
        (10, "S302"),
        (10, "S506"),
    } <= found
