"""Installs the pipeline's packages (used by the Dockerfile; locally PYTHONPATH is the checkout)."""

from setuptools import find_packages, setup

with open("requirements.in") as f:
    requirements = [line.strip() for line in f if line.strip() and not line.startswith("#")]

setup(
    name="tfx-mlops-template",
    version="0.1.0",
    packages=find_packages(
        include=[
            "components*",
            "datagen*",
            "models*",
            "settings*",
            "metadata*",
            "reports*",
            "tables*",
            "pipelines*",
            "serving*",
            "monitoring*",
        ]
    ),
    py_modules=["mlops_artifacts"],  # custom artifact types, imported by type name on Vertex
    package_data={"reports": ["templates/*.j2", "templates/*.css", "templates/*.js", "templates/sections/*.j2"]},
    python_requires=">=3.11",
    install_requires=requirements,
)
