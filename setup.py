"""The one thing pyproject.toml does not say stably: the compiled near-duplicate kernels.

(``[tool.setuptools.ext-modules]`` in pyproject.toml is still experimental in setuptools and
warns on every build; ``setup.py`` with ``ext_modules`` is the stable way.) Everything else is in
pyproject.toml. The kernels are plain C with no dependency: see
``streams/detection/neardup/kernels.py``.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pileon.streams.detection.neardup._kernels",
            sources=["streams/detection/neardup/_kernels.c"],
            extra_compile_args=["-O3"],
        )
    ]
)
