"""Packaging for tfx-embedding-guard.

Requirements are ranges that keep the TFX 1.16 family together, as tfx-addons
declares them; the exact versions that were tested live in constraints.txt only
(`make lock` regenerates it).
"""

import ast
import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent
PACKAGE_INIT = HERE / "components" / "embedding_guard" / "__init__.py"


def read_version() -> str:
    """Returns `__version__` from the package without importing it (and so TFX)."""
    tree = ast.parse(PACKAGE_INIT.read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(target, "id", None) for target in node.targets] == ["__version__"]
            and isinstance(node.value, ast.Constant)
        ):
            return node.value.value
    raise RuntimeError(f"{PACKAGE_INIT} defines no __version__ = '...' string")


# Each range admits only the TFX 1.16 family: TFX pins the minor versions of its
# own libraries, and TFT 1.16 needs a Beam before 2.70 (where `dill` became an extra).
INSTALL_REQUIRES = [
    "tfx>=1.16,<1.17",
    "tensorflow>=2.16,<2.17",
    "tensorflow-transform>=1.16,<1.17",
    "tensorflow-data-validation>=1.16.1,<1.17",
    "tfx-bsl>=1.16.1,<1.17",
    "ml-metadata>=1.16,<1.17",
    "tensorflow-metadata>=1.16.1,<1.17",
    "apache-beam[gcp]>=2.60,<2.61",
    "numpy>=1.22,<2",
    "absl-py>=0.9,<2",
    "protobuf>=3.20.3,<5",
    # The transform graph's protos, compiled, without importing TensorFlow.
    "tensorboard>=2.16,<2.17",
    # TFRecord checksums for the offending examples, without TensorFlow.
    "google-crc32c>=1.5,<2",
    # check's progress bars.
    "rich>=13,<16",
]

EXTRAS_REQUIRE = {
    "test": [
        "pytest>=8",
        "hypothesis>=6.100",
        "ruff>=0.6",
        "mypy>=1.10",
        "build>=1.2",
        "junitparser>=5",
    ],
    # Kubeflow Pipelines / Vertex AI: TFX's own [kfp] extra, so that
    # `pip install -c constraints.txt .[kfp]` gets the kfp that TFX 1.16 was released with.
    "kfp": ["tfx[kfp]>=1.16,<1.17"],
}

# Frames gzip TFRecords, and parses the checked int64 features of their
# tf.Examples, without the GIL. Optional: without a C compiler the install still
# succeeds, the reader frames in Python and TensorFlow parses, with the same results.
FRAMING_EXTENSION = setuptools.Extension(
    "embedding_guard.read._tfrecord_framing",
    sources=["components/embedding_guard/read/_tfrecord_framing.c"],
    optional=True,
)

setuptools.setup(
    name="tfx-embedding-guard",
    version=read_version(),
    description=(
        "A TFX component that blocks the Trainer when a categorical index "
        "would fall outside its embedding table."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.11",
    package_dir={"": "components"},
    packages=setuptools.find_packages(where="components"),
    package_data={
        "embedding_guard": ["py.typed"],
        "embedding_guard.read": ["_tfrecord_framing.pyi"],
    },
    ext_modules=[FRAMING_EXTENSION],
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={
        "console_scripts": ["embedding-guard=embedding_guard.cli.main:console_main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Typing :: Typed",
    ],
)
