"""Packaging for tfx-embedding-guard."""

import setuptools

setuptools.setup(
    name="tfx-embedding-guard",
    version="0.1.0",
    description=(
        "A TFX component that blocks the Trainer when a categorical index "
        "would fall outside its embedding table."
    ),
    python_requires=">=3.10,<3.11",
    package_dir={"": "components"},
    packages=setuptools.find_packages(where="components"),
    package_data={"embedding_guard": ["py.typed"]},
    install_requires=[
        "tfx==1.16.0",
        "tensorflow==2.16.2",
        "tensorflow-transform==1.16.0",
        "tensorflow-data-validation==1.16.1",
        "tfx-bsl==1.16.1",
        "ml-metadata==1.16.0",
        "tensorflow-metadata==1.16.1",
        "apache-beam[gcp]==2.60.0",
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6"],
    },
    entry_points={
        "console_scripts": ["embedding-guard=embedding_guard.cli:main"],
    },
)
