"""graves_tf: Graves (2013), "Generating Sequences With Recurrent Neural Networks", in TensorFlow/Keras."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
# A checkout keeps export/ and tfds_builders/ at its top level; the wheel installs them inside the package, as
# graves_tf.export and graves_tf.tfds_builders, so an installed graves_tf adds no generic top-level names
# (and no tests package). An editable install maps the two names to the checkout's folders.
PACKAGE_DIR = {"graves_tf.export": "export", "graves_tf.tfds_builders": "tfds_builders"}
PACKAGES = [
    *find_packages(include=["graves_tf", "graves_tf.*"]),
    *(f"graves_tf.{name}" for name in find_packages(include=["export", "export.*", "tfds_builders", "tfds_builders.*"])),
]
# The programs of graves_tf/cli/, as commands (each also runs as python -m graves_tf.cli.NAME).
COMMANDS = {
    "graves-tf-write": "write",
    "graves-tf-train": "train",
    "graves-tf-evaluate": "evaluate",
    "graves-tf-export": "export",
    "graves-tf-serve": "serve",
    "graves-tf-gallery": "gallery",
    "graves-tf-average-checkpoints": "average_checkpoints",
    "graves-tf-release": "release",
}
SERVE = ["starlette>=0.37", "uvicorn>=0.29"]

setup(
    name="graves_tf",
    version="0.1.0",
    description=(
        "Handwriting synthesis, handwriting prediction and text prediction with "
        "the networks of Graves (2013), as Keras layers and TensorFlow tools."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    entry_points={"console_scripts": [f"{command}=graves_tf.cli.{name}:run" for command, name in COMMANDS.items()]},
    package_data={
        "graves_tf": ["configs/*.cfg", "pretrained/*/*", "web/*"],  # every shipped model folder; the serve page
        "graves_tf.export": ["README.md"],
        # TFDS reads checksums.tsv next to each builder; dummy_data/ serves the notebooks and tests.
        "graves_tf.tfds_builders": ["*.md", "*/*.tsv", "*/*.md", "*/*.bib", "*/dummy_data/**/*"],
    },
    include_package_data=True,
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "keras>=3.3",
        "tensorflow-datasets>=4.9",
        "numpy>=1.26",
        "absl-py>=1.4",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "tensorboard>=2.16",
        # The `tfds build` command of tensorflow-datasets 4.9.x imports these at start-up.
        "apache-beam>=2.50",
        "mlcroissant>=1.0",
        # tensorflow-datasets finds a builder's checksums.tsv and dummy_data/ with it.
        "importlib_resources>=5",
    ],
    extras_require={
        # tfds.testing (the builders' DatasetBuilderTestCase tests) needs dill.
        # tests/test_notebooks.py runs colab/*.ipynb with nbclient on an ipykernel.
        # graves_tf.serve: the page's web server (Starlette on uvicorn).
        "serve": SERVE,
        # tests/test_serve*.py: httpx for Starlette's test client, Playwright to drive the system Chromium
        # (it never downloads a browser: the tests skip without /usr/bin/chromium).
        "test": ["pytest>=7", "pytest-xdist>=3", "dill>=0.3", "nbclient>=0.7", "nbformat>=5", "ipykernel>=6",
                 *SERVE, "httpx>=0.27", "playwright>=1.40",
                 # tests/test_backends.py: the models under Keras's JAX and PyTorch backends (docs/backends.md).
                 "jax[cpu]>=0.4.30", "torch==2.13.0"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
