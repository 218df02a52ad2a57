"""The functions' deployment packages as `sam build` leaves them in .aws-sam/build (`make
template-checks` builds them, then runs this file; issue 16): each at most 15 MiB unzipped
(CollectResults 64 MiB: numpy, for the evaluation, issue 23),
holding exactly the wheels its requirements file lists, and each importing as on Lambda - in a
fresh interpreter with nothing on sys.path but its own package, its layers and the runtime's
boto3 - with every module its own code imports later, byte code included (package_probe.py).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from modelrun_local import lambda_packages
from modelrun_local.lambda_packages import Built, max_package_bytes, tree_bytes
from modelrun_local.stack import ROOT, load_template

PROBE = ROOT / "functions" / "package_probe.py"
# What a function's paths never load: CollectResults never calls GitHub; UpdatePullRequest never
# reads a container's outputs (the metrics schema and the comparison are CollectResults' work).
NEVER_LOADED = {
    "CollectResultsFunction": "modelrun.adapters.github,modelrun.adapters.github_client,gidgethub,jwt,cryptography",
    "UpdatePullRequestFunction": (
        "modelrun.reporting,modelrun.domain.results,modelrun.domain.comparing,modelrun.domain.evaluation,"
        "fastjsonschema,numpy"
    ),
}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def required(requirements: Path) -> set[str]:
    return {normalized(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", requirements.read_text(), re.M)}


@pytest.fixture(scope="module")
def built() -> dict[str, Built]:
    found = lambda_packages.built()
    if not found:
        pytest.skip("no sam build here: `make template-checks` builds .aws-sam/build")
    kinds = ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion")
    ours = {k for k, r in load_template()["Resources"].items() if r["Type"] in kinds}
    assert ours <= set(found), "the build is stale: run `make template-checks`"
    return found


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lambda_packages.runtime_dir(tmp_path_factory.mktemp("lambda-runtime"))


def test_every_function_package_is_within_its_size_unzipped(built: dict[str, Built]) -> None:
    sizes = {k: tree_bytes(b.directory) for k, b in built.items() if b.kind == "function"}
    over = {k: f"{v / 2**20:.1f} MiB" for k, v in sizes.items() if v > max_package_bytes(k)}
    assert not over, f"packages over their size unzipped (15 MiB; CollectResults 64 MiB): {over}"
    assert sizes["CollectResultsFunction"] > 30 * 2**20  # numpy is in it: the bound is not idle
    assert max(v for k, v in sizes.items() if k != "CollectResultsFunction") <= 15 * 2**20


def test_each_package_holds_exactly_the_wheels_of_its_requirements(built: dict[str, Built]) -> None:
    for logical_id, b in built.items():
        name = re.sub(r"(?<!^)(?=[A-Z])", "-", logical_id.removesuffix("Function")).lower()
        shipped = {normalized(p.name.split("-")[0]) for p in b.directory.glob("*.dist-info")}
        assert shipped == required(ROOT / "functions" / "requirements" / f"{name}.txt"), logical_id


@pytest.mark.parametrize(
    "logical_id", ["SubmitFunction", "TrackFunction", "CollectResultsFunction", "UpdatePullRequestFunction"]
)
def test_each_handler_imports_from_its_own_package_layers_and_boto3(
    built: dict[str, Built], runtime: Path, logical_id: str
) -> None:
    function = built[logical_id]
    assert function.handler_module is not None
    args, env = lambda_packages.isolated([function.directory, *function.layers, runtime])
    command = [*args, str(PROBE), str(function.directory), function.handler_module]
    done = subprocess.run(
        [*command, "--not-needed", NEVER_LOADED.get(logical_id, "")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert found["missing"] == [], "imports the package cannot satisfy"
    assert found["uncompiled"] == [], "modules it loads without byte code (compiled on every cold start)"
    assert f"{function.handler_module.replace('.', '/')}.py" in found["files"]
