"""The wheel that `python -m build` makes installs and runs on its own.

A full TFX install per run would take minutes, so the fresh venv borrows the test
interpreter's site-packages (TFX and the rest) through a plain path line in a .pth
file. Such a line adds only that folder: the .pth files inside it, among them the
editable install of this project, are not processed, so `embedding_guard` can only
come from the wheel installed into the fresh venv, which the tests check.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import pytest

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[2]
TESTDATA = REPO / "tests" / "component" / "testdata"
PACKAGE = REPO / "components" / "embedding_guard"
BUILD_TIMEOUT_SECONDS = 600
RUN_TIMEOUT_SECONDS = 600


def _package_version() -> str:
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    (version,) = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["__version__"]
        and isinstance(node.value, ast.Constant)
    ]
    return version


def _clean_env() -> dict[str, str]:
    # The test runs with the source tree on PYTHONPATH; the installed wheel must not.
    hidden = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH"}
    env = {key: value for key, value in os.environ.items() if key not in hidden}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(
    args: list[str], cwd: pathlib.Path, timeout: int, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        args,
        cwd=cwd,
        env={**_clean_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> pathlib.Path:
    """sdist and wheel built with `python -m build` from a copy of the sources."""
    root = tmp_path_factory.mktemp("build")
    source = root / "source"
    source.mkdir()
    # A copy, so that setuptools' build/ and egg-info never land in the checkout.
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "components",
        source / "components",
        # An extension built in place by the editable install must not stand in for the build.
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc", "*.so"),
    )
    out = root / "dist"
    # Without isolation: the build backend comes from the test extra, no download.
    result = _run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        cwd=root,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def fresh_venv(dist, tmp_path_factory) -> pathlib.Path:
    """A venv of the test's interpreter with only the wheel installed into it."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    made = _run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        cwd=venv.parent,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=venv,
        timeout=RUN_TIMEOUT_SECONDS,
    ).stdout.strip()
    # Every site-packages folder the test interpreter sees (its venv's, and any that
    # venv borrows in turn), but not the source tree that PYTHONPATH adds.
    borrowed = [
        entry
        for entry in sys.path
        if os.path.basename(entry) in {"site-packages", "dist-packages"} and os.path.isdir(entry)
    ]
    assert sysconfig.get_paths()["purelib"] in borrowed
    (pathlib.Path(purelib) / "borrowed_site_packages.pth").write_text(
        "".join(f"{entry}\n" for entry in borrowed)
    )
    (wheel,) = dist.glob("*.whl")
    # pip itself is borrowed too; --ignore-installed keeps it from touching the
    # borrowed folder's editable install of the same name.
    install = _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            "--no-compile",
            str(wheel),
        ],
        cwd=venv,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return venv


def test_build_makes_an_sdist_and_a_wheel_of_the_package_version(dist):
    version = _package_version()
    # The framing extension makes the wheel one for this interpreter and platform.
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    assert sorted(path.name for path in dist.iterdir()) == [
        f"tfx_embedding_guard-{version}-cp310-cp310-{platform}.whl",
        f"tfx_embedding_guard-{version}.tar.gz",
    ]


def test_the_wheel_holds_the_built_framer_and_the_sdist_its_source(dist):
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        compiled = [name for name in names if name.endswith(".so")]
    # Its interface, for type checkers (the package ships py.typed).
    assert "embedding_guard/read/_tfrecord_framing.pyi" in names
    assert compiled == [
        f"embedding_guard/read/_tfrecord_framing{sysconfig.get_config_var('EXT_SUFFIX')}"
    ]
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        sources = [name for name in archive.getnames() if name.endswith(".c")]
    assert [name.split("/", 1)[1] for name in sources] == [
        "components/embedding_guard/read/_tfrecord_framing.c"
    ]


def test_without_a_c_compiler_the_sdist_still_builds_a_wheel_of_every_module(dist, tmp_path):
    (sdist,) = dist.glob("*.tar.gz")
    # What a Beam worker does with --setup_file's sdist, with a compiler that fails.
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(sdist),
        ],
        cwd=tmp_path,
        timeout=BUILD_TIMEOUT_SECONDS,
        env={"CC": "false"},
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {f"embedding_guard/{path.name}" for path in PACKAGE.glob("*.py")} <= names
    assert not [name for name in names if name.endswith(".so")]


def test_wheel_holds_every_module_typed_marker_ranges_and_entry_point(dist):
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
        (entry_points_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(entry_points_name).decode()
    modules = {f"embedding_guard/{path.name}" for path in PACKAGE.glob("*.py")}
    assert modules <= names
    assert "embedding_guard/py.typed" in names
    # Only the package goes in: no tests, pipeline, bench or components/ prefix.
    assert {name.split("/")[0] for name in names} == {
        "embedding_guard",
        metadata_name.split("/")[0],
    }
    assert "embedding-guard = embedding_guard.cli.main:console_main" in entry_points
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any(line.startswith("Requires-Dist: tfx<1.17,>=1.16") for line in requires), requires
    # Exact pins belong in constraints.txt; the wheel states ranges.
    assert not [line for line in requires if "==" in line.split(";")[0]], requires


def test_installed_wheel_is_the_code_that_runs(fresh_venv):
    python = fresh_venv / "bin" / "python"
    probe = _run(
        [
            str(python),
            "-c",
            "import json, embedding_guard, importlib.metadata as m; "
            "from embedding_guard.read import _tfrecord_framing as framing; "
            "d = m.distribution('tfx-embedding-guard'); "
            "print(json.dumps([embedding_guard.__file__, embedding_guard.__version__, "
            "d.version, str(d.locate_file('')), framing.__file__]))",
        ],
        cwd=fresh_venv,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    module_file, module_version, dist_version, dist_root, framing_file = json.loads(probe.stdout)
    venv = fresh_venv.resolve()
    assert pathlib.Path(module_file).resolve().is_relative_to(venv), module_file
    assert pathlib.Path(framing_file).resolve().is_relative_to(venv), framing_file
    assert pathlib.Path(dist_root).resolve().is_relative_to(venv), dist_root
    assert module_version == dist_version == _package_version()


def test_installed_console_script_checks_the_testdata(fresh_venv, tmp_path):
    out = tmp_path / "reports"
    result = _run(
        [
            str(fresh_venv / "bin" / "embedding-guard"),
            "check",
            "--transform-graph",
            str(TESTDATA / "transform_graph"),
            "--examples",
            str(TESTDATA / "transformed_examples"),
            "--output",
            str(out),
        ],
        cwd=tmp_path,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    # make_examples.py puts -1 into eval's city_xf and floats into test's product_xf;
    # train is clean. Exit code 1 means blocked.
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    blessed = {
        split: json.loads((out / f"Split-{split}" / "index_report.json").read_text())["blessed"]
        for split in ("eval", "test", "train")
    }
    assert blessed == {"eval": False, "test": False, "train": True}
    assert "Traceback" not in result.stderr
