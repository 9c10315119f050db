"""On the meta device the init code writes no values, but InitRecorder follows the value law it
would leave in each parameter (mean, E[w^2]) and the estimator uses it before PyTorch's formulas."""

from __future__ import annotations

import math

import pytest
from helpers import analyze_path

from gradlint.config import Config

MODEL = """
import math
import torch
import torch.nn as nn


def timm_trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    # timm.layers.weight_init._trunc_normal_, the recipe torch.nn.init used to share
    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    with torch.no_grad():
        lo, up = norm_cdf((a - mean) / std), norm_cdf((b - mean) / std)
        tensor.uniform_(2 * lo - 1, 2 * up - 1)
        tensor.erfinv_()
        tensor.mul_(std * math.sqrt(2.0))
        tensor.add_(mean)
        tensor.clamp_(min=a, max=b)
    return tensor


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 64, 3)
        self.lin = nn.Linear(512, 256)
{init}
    def forward(self, x):
        return self.lin(self.conv(x).flatten(1)[:, :512])
"""

RECIPES = {
    "normal_": ("nn.init.normal_(self.lin.weight, mean=0.01, std=0.02)", "lin", 0.01, 0.02 ** 2 + 0.01 ** 2),
    "Tensor.normal_": ("self.lin.weight.data.normal_(0, 0.01)", "lin", 0.0, 1e-4),
    "uniform_": ("nn.init.uniform_(self.lin.weight, -0.3, 0.1)", "lin", -0.1, (0.09 - 0.03 + 0.01) / 3),
    "kaiming_normal_ fan_out": ("nn.init.kaiming_normal_(self.conv.weight, mode='fan_out', nonlinearity='relu')",
                                "conv", 0.0, 2.0 / (64 * 9)),
    "xavier_uniform_": ("nn.init.xavier_uniform_(self.lin.weight)", "lin", 0.0, 2.0 / (512 + 256)),
    "torch trunc_normal_": ("nn.init.trunc_normal_(self.lin.weight, std=0.02)", "lin", 0.0, 0.02 ** 2),
    "timm trunc_normal_": ("timm_trunc_normal_(self.lin.weight, std=0.02)", "lin", 0.0, 0.02 ** 2),
    # N(0.5, 1) cut to [-0.5, 1]: the truncation moves the moments (values from the closed form)
    "torch trunc_normal_, tight": ("nn.init.trunc_normal_(self.lin.weight, mean=0.5, std=1.0, a=-0.5, b=1.0)",
                                   "lin", 0.293372, 0.258843),
    "timm trunc_normal_, tight": ("timm_trunc_normal_(self.lin.weight, mean=0.5, std=1.0, a=-0.5, b=1.0)",
                                  "lin", 0.293372, 0.258843),
    "zeros_": ("nn.init.zeros_(self.lin.weight)", "lin", 0.0, 0.0),
    "mul_ after init": ("timm_trunc_normal_(self.lin.weight, std=0.02)\n        self.lin.weight.data.mul_(0.001)",
                        "lin", 0.0, (0.02 * 0.001) ** 2),
    "add_/div_ after uniform_": ("with torch.no_grad():\n            self.lin.weight.uniform_(0, 1).div_(4).sub_(0.1)",
                                 "lin", 0.025, 0.0058333333),
    "copy_ from a tracked tensor": ("self.lin.weight.data.copy_(torch.empty(256, 512).normal_(0, 0.05))",
                                    "lin", 0.0, 0.05 ** 2),
    "orthogonal_": ("nn.init.orthogonal_(self.lin.weight, gain=2.0)", "lin", 0.0, 4.0 / 512),
    ".data = tracked": ("self.lin.weight.data = torch.empty(256, 512).uniform_(-0.1, 0.1)", "lin", 0.0, 0.01 / 3),
}


def build(write, init: str, limit: int):
    from gradlint.load.build import build_model
    from gradlint.load.discover import load_file
    from gradlint.load.targets import parse_target

    path = write("net.py", MODEL.format(init="        " + init + "\n"))
    loaded = load_file(parse_target(f"{path}::Net"))
    assert loaded.error is None, loaded.error
    return build_model(loaded.candidates[0], materialize_limit=limit)


@pytest.mark.parametrize("recipe", list(RECIPES), ids=list(RECIPES))
def test_recorded_law_matches_the_recipe_and_the_real_weights(write, recipe):
    import torch

    code, layer, mean, second = RECIPES[recipe]
    meta = build(write, code, 0)
    assert not meta.materialized
    law = meta.init_laws[f"{layer}.weight"]
    assert law is not None
    assert law.mean == pytest.approx(mean, rel=1e-4, abs=1e-12)
    assert law.second == pytest.approx(second, rel=1e-4, abs=1e-15)
    assert law.zero == (second == 0.0)
    torch.manual_seed(0)
    real = build(write, code, 10**9)
    w = dict(real.model.named_parameters())[f"{layer}.weight"].detach().double()
    # 9216 or 131072 draws: the sample's E[w^2] is within a few percent of the law's
    assert float(w.pow(2).mean()) == pytest.approx(law.second, rel=0.05, abs=1e-15)
    assert float(w.mean()) == pytest.approx(law.mean, abs=5 * math.sqrt(law.second / w.numel()) + 1e-15)


def test_the_source_names_the_recipe(write):
    from gradlint.estimate.weights import WeightSource

    built = build(write, "nn.init.normal_(self.lin.weight, std=0.01)\n"
                         "        nn.init.kaiming_normal_(self.conv.weight, mode='fan_out', nonlinearity='relu')", 0)
    ws = WeightSource(built.model, False, built.init_touched, built.init_laws)
    assert ws.stats("lin.weight").source == "recorded init: normal_(std=0.01)"
    assert ws.stats("conv.weight").source == "recorded init: normal_(std=0.0589) from kaiming_normal_"
    assert ws.stats("lin.bias").source.startswith("default init of Linear")  # untouched: the formula
    assert not ws.unknown


@pytest.mark.parametrize("code", [
    "self.lin.weight.data.copy_(torch.randn(256, 512))",  # from a tensor whose values are unknown
    "nn.init.normal_(self.lin.weight, std=0.1)\n        self.lin.weight.data[:3].zero_()",  # part of it
    "nn.init.normal_(self.lin.weight, std=0.1)\n        self.lin.weight.data.mul_(torch.tensor(2.0))",  # tensor arg
    "self.lin.weight.data.mul_(0.5)",  # a change to the default init
    "nn.init.normal_(self.lin.weight)\n        self.lin.weight.data.exponential_()",  # an op with no law
    "nn.init.eye_(self.lin.weight)",
    "nn.init.normal_(self.lin.weight)\n        self.lin.weight.data = torch.zeros(256, 512)",
], ids=["copy_ untracked", "slice", "tensor argument", "mul_ of the default", "other op", "eye_", ".data = untracked"])
def test_unknown_laws_fall_back_to_the_formula_and_say_so(write, code):
    from gradlint.estimate.weights import WeightSource

    built = build(write, code, 0)
    assert built.init_laws["lin.weight"] is None
    ws = WeightSource(built.model, False, built.init_touched, built.init_laws)
    st = ws.stats("lin.weight")
    assert "values are unknown on the meta device" in st.source
    assert st.second == pytest.approx(1 / (3 * 512))
    assert ws.unknown == ["lin.weight"]


def test_default_reset_after_custom_init_forgets_the_law(write):
    from gradlint.estimate.weights import WeightSource

    built = build(write, "nn.init.normal_(self.lin.weight, std=0.1)\n        self.lin.reset_parameters()", 0)
    assert "lin.weight" not in built.init_laws
    ws = WeightSource(built.model, False, built.init_touched, built.init_laws)
    assert ws.stats("lin.weight").source.startswith("default init of Linear")
    assert not ws.unknown


def test_recorded_law_beats_initializer_range_only_when_recorded():
    import torch
    import torch.nn as nn

    from gradlint.estimate.weights import WeightSource
    from gradlint.load.initlaw import normal

    class Config:
        initializer_range = 0.02

    HF = type("HFModel", (nn.Module,), {"__module__": "transformers.models.fake.modeling_fake"})
    with torch.device("meta"):
        model = HF()
        model.config = Config()
        model.a, model.b = nn.Linear(64, 64), nn.Linear(64, 64)
    ws = WeightSource(model, False, {"a.weight"}, {"a.weight": normal(0.0, 0.5)})
    assert ws.stats("a.weight").second == pytest.approx(0.25)
    assert ws.stats("a.weight").source == "recorded init: normal_(std=0.5)"
    assert ws.stats("b.weight").second == pytest.approx(0.02 ** 2)  # nothing recorded: initializer_range
    assert "initializer_range" in ws.stats("b.weight").source


def test_hugging_face_meta_build_runs_no_init_weights():
    """transformers 5 skips _init_weights on the meta device: nothing is recorded, initializer_range stays."""
    transformers = pytest.importorskip("transformers")
    import torch

    from gradlint.load.init_recorder import InitRecorder

    cfg = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                   num_key_value_heads=1, vocab_size=50)
    with torch.device("meta"), InitRecorder(laws=True) as rec:
        model = transformers.LlamaForCausalLM(cfg)
    assert rec.laws_by_name(model) == {}


E2E = """
import math
import torch
import torch.nn as nn


class Net(nn.Module):
    # vgg-style init: He (fan_out) convs, N(0, 0.01) linears, zero biases; a timm-style scaled head
    def __init__(self, depth=8, width=32, zero_head=False):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3 if i == 0 else width, width, 3, padding=1) for i in range(depth)])
        self.fc = nn.Linear(width * 64, 256)
        self.head = nn.Linear(256, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)
        if zero_head:
            nn.init.zeros_(self.head.weight)
        else:
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            self.head.weight.data.mul_(0.001)

    def forward(self, x):
        for conv in self.convs:
            x = torch.relu(conv(x))
        return self.head(torch.relu(self.fc(x.flatten(1))))


def example_inputs():
    return (torch.randn(8, 3, 8, 8),)
"""


def test_meta_estimate_matches_the_materialized_one_under_custom_init(write):
    path = write("vggish.py", E2E)
    real = analyze_path(path, select=[]).models[0]
    meta = analyze_path(path, select=[], config=Config(materialize_limit=0)).models[0]
    assert real.materialized and not meta.materialized
    r, m = real.summary.estimated_attenuation, meta.summary.estimated_attenuation
    assert abs(math.log10(r / m)) < 0.1  # the default formulas: 1.2 decades off
    assert real.summary.verdict == meta.summary.verdict
    for lr, lm in zip(real.layers, meta.layers):
        assert lr.module == lm.module
        assert abs(math.log10(lr.estimate["grad_ratio"] / lm.estimate["grad_ratio"])) < 0.1, lr.module


def test_zero_init_head_on_meta_is_a_structural_zero(write):
    path = write("zerohead.py", E2E.replace("zero_head=False", "zero_head=True"))
    meta = analyze_path(path, select=[], config=Config(materialize_limit=0)).models[0]
    real = analyze_path(path, select=[]).models[0]
    assert not meta.materialized
    assert meta.summary.verdict == real.summary.verdict == "structural-zero"
    assert meta.summary.estimated_attenuation == real.summary.estimated_attenuation == 0.0


def test_law_math():
    from gradlint.load import initlaw as L

    # the timm recipe with default bounds: uniform_(-1, 1), erfinv_, scale: an untruncated normal
    law = L.clamp(L.affine(L.erfinv(L.uniform(-1.0, 1.0)), 0.02 * math.sqrt(2)), -2.0, 2.0)
    assert law.kind == "normal" and law.second == pytest.approx(4e-4) and law.mean == pytest.approx(0.0, abs=1e-18)
    # a clamp that cuts: N(0, 1) clipped to [-0.5, 1] (closed form: the tails sit on the bounds)
    cut = L.clamp(L.normal(0.0, 1.0), -0.5, 1.0)
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
    assert cut.mean == pytest.approx(-0.5 * cdf(-0.5) + phi(-0.5) - phi(1.0) + (1 - cdf(1.0)))
    assert L.clamp(L.uniform(-1, 1), None, 0.2).mean == pytest.approx(-0.16)
    assert L.clamp(L.uniform(-1, 1), -2, 2) == L.uniform(-1, 1)  # bounds beyond the support: no-op
    assert L.clamp(cut, -0.2, 0.3) is None  # only moments known, and the clamp cuts them
    assert L.erfinv(L.uniform(-2, 1)) is None
    assert L.affine(L.normal(0, 1), 0.0).zero


def test_meta_bound_counts_a_recorded_mean():
    import torch

    from gradlint.estimate.bound import expected_spectral_norm

    # uniform_(0, 1): a rank-one mean part of norm 0.5 sqrt(64 * 32) dominates the random part
    torch.manual_seed(0)
    w = torch.rand(64, 32, dtype=torch.float64)
    true = float(torch.linalg.matrix_norm(w, 2))
    est = expected_spectral_norm(1 / 3, 64, 32, mean=0.5)
    assert true <= est < 1.3 * true
    assert expected_spectral_norm(0.25, 64, 32) == pytest.approx(0.5 * (8 + math.sqrt(32)))  # zero mean: as before
