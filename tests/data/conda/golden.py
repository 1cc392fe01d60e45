"""Golden anonymous-environment names/versions from the real azure-ai-ml SDK.

Run with a Python that has azure-ai-ml installed (the versions pinned in
golden.json came from azure-ai-ml 1.35.2):

    python tests/data/conda/golden.py > tests/data/conda/golden.json

For each conda file here and each image, it builds the anonymous
Environment exactly as the SDK does for a job's inline environment and
records the conda text the SDK sends (`_translated_conda_file`) and the
content-hash version.
"""
import json
import pathlib
import sys

import azure.ai.ml
from azure.ai.ml.entities import Environment

HERE = pathlib.Path(__file__).resolve().parent
IMAGES = [
    "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
    "mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04",
]

cases = []
for conda in sorted(HERE.glob("*.yml")):
    for image in IMAGES:
        env = Environment(image=image, conda_file=str(conda))
        cases.append(
            {
                "conda_file": conda.name,
                "image": image,
                "name": env.name,
                "version": env.version,
                "conda_text": env._translated_conda_file,
            }
        )
json.dump({"sdk": f"azure-ai-ml {azure.ai.ml.__version__}", "cases": cases}, sys.stdout, indent=2)
sys.stdout.write("\n")
