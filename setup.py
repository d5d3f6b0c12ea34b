"""The package list, which pyproject.toml cannot give (found packages plus mapped ones), and
a build hook that keeps this file out of the wheel's ``i2i/workflow``.

``i2i.workflow`` is the repository root (pyproject.toml maps it and lists its files as package
data), so the root's only module, this file, would otherwise be packaged with it.
"""

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

WORKFLOW = "i2i.workflow"


class BuildPy(build_py):
    """build_py that packages no Python modules of ``i2i.workflow`` (its scripts are data)."""

    def find_package_modules(self, package: str, package_dir: str) -> list:
        if package == WORKFLOW:
            return []
        return super().find_package_modules(package, package_dir)


setup(
    packages=[
        *find_namespace_packages(include=["i2i", "i2i.*"], exclude=["*.__pycache__"]),
        WORKFLOW,
        "snakemake_logger_plugin_i2i",
    ],
    cmdclass={"build_py": BuildPy},
)
