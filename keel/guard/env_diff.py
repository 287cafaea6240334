"""``keel env diff``: what differs between two environments, and does it matter?

Both documents are walked side by side; every changed value gets a dotted key
(``python.version``, ``distributions.torch``, ``cpu.flags.avx512f``, ``gpu.devices.0.name``) and
is classified by the first matching row of :data:`RULES`. Each row pairs a key pattern with a
classifier; the reason strings carry the reasoning, so the table doubles as the policy's
documentation. To extend the policy, add a row above the more general one it refines.

Severities: ``breaking`` (the model may not load or may compute wrong results), ``risky`` (it will
load, but outputs can differ in low-order digits or behaviour may change: rerun verify) and
``info`` (recorded, not expected to matter).
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from keel.common import errors


class Severity(StrEnum):
    INFO = "info"
    RISKY = "risky"
    BREAKING = "breaking"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.RISKY: 1, Severity.BREAKING: 2}

BREAKING, RISKY, INFO = Severity.BREAKING, Severity.RISKY, Severity.INFO


class _Missing:
    """The value of a key one side does not have."""

    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()

# Keys whose list values are sets: each element is compared on its own (cpu.flags.avx512f).
SET_KEYS = frozenset({"cpu.flags", "torch.arch_list"})


@dataclass(frozen=True)
class Change:
    """One key whose value differs between A (reference, e.g. training) and B (e.g. this host)."""

    key: str
    old: Any
    new: Any

    @property
    def name(self) -> str:
        """The last segment of the key: a distribution, flag or variable name."""
        return self.key.rsplit(".", 1)[-1]

    @property
    def added(self) -> bool:
        return self.old is MISSING

    @property
    def removed(self) -> bool:
        return self.new is MISSING


@dataclass(frozen=True)
class Context:
    """What the rules know beyond the two documents.

    ``required`` holds the distributions that provide components the model uses; None means
    unknown, and the rules then assume the model may use any of them.
    """

    required: frozenset[str] | None = None

    def uses(self, distribution: str) -> bool:
        return self.required is None or distribution in self.required


Verdict = tuple[Severity, str] | None  # None: the change is not reported at all
Classifier = Callable[[Change, Context], Verdict]


@dataclass(frozen=True)
class Rule:
    """Changes to keys matching ``pattern`` (fnmatch syntax) are classified by ``classify``."""

    pattern: str
    classify: Classifier

    def matches(self, key: str) -> bool:
        return fnmatch.fnmatchcase(key, self.pattern)


# -- classifier builders -------------------------------------------------------------------------


def ignore() -> Classifier:
    """Not reported (bookkeeping fields, or duplicates of keys classified elsewhere)."""
    return lambda change, context: None


def always(severity: Severity, reason: str) -> Classifier:
    """Every change gets ``severity``; ``reason`` may use {name}, {old} and {new}."""

    def classify(change: Change, context: Context) -> Verdict:
        return severity, reason.format(
            name=change.name, old=_show(change.old), new=_show(change.new)
        )

    return classify


Level = tuple[Severity, str]


@dataclass(frozen=True)
class VersionPolicy:
    """Severity and reason per kind of version change (packaging.version semantics).

    ``local`` is a change of the local label (+cpu -> +cu121: another build of the same release);
    ``removed`` defaults to the ``major`` level.
    """

    major: Level
    minor: Level
    patch: Level
    local: Level | None = None
    removed: Level | None = None
    added: Level = (INFO, "{name} {new} is installed here but was not in the reference")

    def __call__(self, change: Change, context: Context) -> Verdict:
        return classify_version(change, self)


def classify_version(change: Change, policy: VersionPolicy) -> Verdict:
    fill = {"name": change.name, "old": _show(change.old), "new": _show(change.new)}
    if change.removed:
        level = policy.removed or policy.major
        return level[0], level[1].format(**fill)
    if change.added:
        return policy.added[0], policy.added[1].format(**fill)
    try:
        old, new = Version(str(change.old)), Version(str(change.new))
    except InvalidVersion:
        return policy.minor[0], (
            f"{change.name} changed {fill['old']} -> {fill['new']} (a version "
            "that cannot be compared; treated as a minor change)"
        )
    verdicts = []
    release = _release_level(old, new)
    if release is not None:
        level = getattr(policy, release)
        verdicts.append((level[0], level[1].format(**fill)))
    if old.local != new.local and policy.local is not None:
        verdicts.append((policy.local[0], policy.local[1].format(**fill)))
    if not verdicts:
        level = policy.patch
        verdicts.append((level[0], level[1].format(**fill)))
    return _worst(verdicts)


def _release_level(old: Version, new: Version) -> str | None:
    if old.major != new.major:
        return "major"
    if old.minor != new.minor:
        return "minor"
    if old.public != new.public:  # micro, pre, post or dev release differs
        return "patch"
    return None


def used_by_model(if_used: Classifier, otherwise: Classifier) -> Classifier:
    """``if_used`` when the model's components come from this distribution (or that is unknown)."""

    def classify(change: Change, context: Context) -> Verdict:
        return (if_used if context.uses(change.name) else otherwise)(change, context)

    return classify


def required_or(otherwise: Classifier) -> Classifier:
    """Distributions in ``required`` get :data:`REQUIRED_POLICY`, the others ``otherwise``."""

    def classify(change: Change, context: Context) -> Verdict:
        if context.required is not None and change.name in context.required:
            return REQUIRED_POLICY(change, context)
        return otherwise(change, context)

    return classify


def set_member(severity: Severity, *, lost: str, gained: str) -> Classifier:
    """For set-like keys (one key per element): ``lost`` when B lacks it, ``gained`` when B adds."""

    def classify(change: Change, context: Context) -> Verdict:
        return severity, (lost if change.removed else gained).format(name=change.name)

    return classify


def device_presence() -> Classifier:
    """A whole GPU added or removed: the device count changed."""

    def classify(change: Change, context: Context) -> Verdict:
        device = change.new if change.added else change.old
        name = device.get("name", "GPU") if isinstance(device, dict) else "GPU"
        verb = "added" if change.added else "removed"
        return INFO, f"GPU {change.name} ({name}) {verb}: the device count changed"

    return classify


# -- the policy ----------------------------------------------------------------------------------

REQUIRED_POLICY = VersionPolicy(
    major=(
        BREAKING,
        "{name} {old} -> {new}: major release of a package that provides components "
        "the model uses; its classes or their config may have changed",
    ),
    minor=(
        RISKY,
        "{name} {old} -> {new}: minor release of a package that provides components the "
        "model uses; behaviour may change, rerun keel verify",
    ),
    patch=(INFO, "{name} {old} -> {new}: bug-fix release of a package the model uses"),
    removed=(
        BREAKING,
        "{name} {old} is missing: it provides a registered component the model "
        "uses, so the model cannot be built",
    ),
)

TOKENIZATION_POLICY = VersionPolicy(
    major=(
        BREAKING,
        "{name} {old} -> {new}: a major release of a tokenization library changes "
        "tokenizer behaviour and file formats; the ids the model sees can change",
    ),
    # tokenizers is 0.x and transformers ships tokenizer changes in minor releases (legacy
    # flags, normalisers, added-token handling), so a minor bump counts as breaking.
    minor=(
        BREAKING,
        "{name} {old} -> {new}: tokenization libraries change normalisation, "
        "pre-tokenisation and added-token handling between minor releases, which "
        "silently changes the ids the model sees",
    ),
    patch=(
        RISKY,
        "{name} {old} -> {new}: bug-fix releases of tokenization libraries have fixed "
        "normalisation bugs, which can change some token ids",
    ),
    removed=(BREAKING, "{name} {old} is missing: models with a tokenizer from it cannot load"),
)

NUMERICS_POLICY = VersionPolicy(
    major=(
        RISKY,
        "{name} {old} -> {new}: major release of a numerics library; kernels and "
        "defaults change, rerun keel verify",
    ),
    minor=(
        RISKY,
        "{name} {old} -> {new}: minor release of a numerics library; kernels change, so "
        "outputs can differ in low-order digits",
    ),
    patch=(INFO, "{name} {old} -> {new}: bug-fix release of a numerics library"),
    removed=(RISKY, "{name} {old} is missing: computations that used it take another code path"),
)

UNRELATED_POLICY = VersionPolicy(
    major=(INFO, "{name} {old} -> {new}: not known to affect models"),
    minor=(INFO, "{name} {old} -> {new}: not known to affect models"),
    patch=(INFO, "{name} {old} -> {new}: not known to affect models"),
    removed=(INFO, "{name} {old} is not installed here; not known to affect models"),
)

TORCH_POLICY = VersionPolicy(
    major=(
        BREAKING,
        "torch {old} -> {new}: a major release changes operator semantics and removes "
        "APIs; the model code and weights are not guaranteed to load",
    ),
    # A minor bump (2.13 -> 2.14) is risky, not breaking: safetensors weights and the nn modules
    # keel builds on load unchanged, but kernels, fused paths and defaults change between minor
    # releases, so predictions can differ in low-order digits.
    minor=(
        RISKY,
        "torch {old} -> {new}: minor releases keep nn modules and safetensors weights "
        "loadable but change kernels and defaults; outputs can differ in low-order "
        "digits, rerun keel verify",
    ),
    patch=(INFO, "torch {old} -> {new}: bug-fix release"),
    local=(
        RISKY,
        "torch build {old} -> {new}: a different build variant (CPU vs CUDA, or another "
        "CUDA version) runs different kernels, so outputs differ in low-order digits",
    ),
    removed=(BREAKING, "torch {old} is not installed: no model can run"),
)

NUMPY_POLICY = VersionPolicy(
    major=(
        BREAKING,
        "numpy {old} -> {new}: major releases break the C ABI that compiled "
        "extensions were built against, and change type promotion (NEP 50)",
    ),
    minor=(
        RISKY,
        "numpy {old} -> {new}: minor releases change SIMD kernels and deprecations; "
        "results can differ in low-order digits",
    ),
    patch=(INFO, "numpy {old} -> {new}: bug-fix release"),
    removed=(BREAKING, "numpy {old} is not installed: keel cannot run"),
)

KEEL_POLICY = VersionPolicy(
    major=(
        BREAKING,
        "keel {old} -> {new}: a major release may change components and their config schema",
    ),
    minor=(
        RISKY,
        "keel {old} -> {new}: a minor release may change component defaults; the "
        "archive format is versioned separately (checked on load, KA007)",
    ),
    patch=(INFO, "keel {old} -> {new}: bug-fix release"),
    removed=(BREAKING, "keel is not installed here"),
)

SAFETENSORS_POLICY = VersionPolicy(
    major=(BREAKING, "safetensors {old} -> {new}: a major release may change the file format"),
    minor=(INFO, "safetensors {old} -> {new}: the file format is stable across minor releases"),
    patch=(INFO, "safetensors {old} -> {new}: bug-fix release"),
    removed=(BREAKING, "safetensors is not installed: keel cannot read weights"),
)

PYTHON_POLICY = VersionPolicy(
    major=(BREAKING, "Python {old} -> {new}: a different major version"),
    minor=(
        BREAKING,
        "Python {old} -> {new}: compiled extensions (torch, tokenizers, numpy) are "
        "built per minor version and the pinned environment cannot be reinstalled "
        "as is; string hashing and pickle details also differ",
    ),
    patch=(INFO, "Python {old} -> {new}: bug-fix release"),
)

TOKENIZATION_LIBRARIES = ("tokenizers", "transformers", "sentencepiece", "tiktoken")
NUMERICS_LIBRARIES = (
    "scipy",
    "mkl",
    "intel-openmp",
    "triton",
    "pytorch-triton",
    "onnxruntime",
    "scipy-openblas32",
    "scipy-openblas64",
    "numexpr",
)

KERNELS = "runs other kernels, so outputs differ in low-order digits"
TF32 = "TF32 differs from IEEE float32 in the 3rd-4th significant digit"
SIMD = (
    "torch, oneDNN and numpy dispatch {} SIMD kernels; float reductions can differ in "
    "low-order digits"
)
KERNEL_ENV_VARS = (
    "NVIDIA_TF32_OVERRIDE",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "KMP_DETERMINISTIC_REDUCTION",
)
DECODING_ENV_VARS = ("PYTHONUTF8", "PYTHONIOENCODING", "LANG", "LC_ALL", "LC_CTYPE")

# The policy. First matching row wins, so specific patterns sit above general ones.
# fmt: off
RULES: tuple[Rule, ...] = (
    # -- bookkeeping, and duplicates of keys classified elsewhere --------------------------------
    Rule("kind", ignore()),
    Rule("schema_version", ignore()),
    Rule("captured_at", ignore()),
    Rule("key_packages*", ignore()),           # repeats distributions.*
    Rule("distribution_sources*", ignore()),   # how, not what, was installed
    Rule("platform.platform", ignore()),       # a summary of platform.*
    Rule("torch", ignore()),                   # torch missing: distributions.torch says so
    Rule("torch.version", ignore()),           # repeats distributions.torch
    Rule("torch.cuda_available", ignore()),    # repeats gpu.available
    Rule("gpu.source", ignore()),
    Rule("gpu.devices.*.index", ignore()),

    # -- Python ----------------------------------------------------------------------------------
    Rule("python.implementation", always(BREAKING, "Python implementation {old} -> {new}: "
                                                   "compiled extensions do not carry over")),
    Rule("python.version", PYTHON_POLICY),
    Rule("python.*", always(INFO, "Python build detail {old} -> {new}")),

    # -- distributions ---------------------------------------------------------------------------
    Rule("distributions.torch", TORCH_POLICY),
    Rule("distributions.numpy", NUMPY_POLICY),
    Rule("distributions.keel", KEEL_POLICY),
    Rule("distributions.safetensors", SAFETENSORS_POLICY),
    *(Rule(f"distributions.{name}", used_by_model(TOKENIZATION_POLICY, UNRELATED_POLICY))
      for name in TOKENIZATION_LIBRARIES),
    *(Rule(f"distributions.{name}", required_or(NUMERICS_POLICY))
      for name in NUMERICS_LIBRARIES),
    Rule("distributions.nvidia-*", required_or(always(
        RISKY, "{name} {old} -> {new}: CUDA libraries shipped as wheels (cuBLAS, cuDNN, NCCL) "
               "choose other kernels, so outputs differ in low-order digits"))),
    Rule("distributions.*", required_or(UNRELATED_POLICY)),

    # -- torch build and process-wide settings ---------------------------------------------------
    Rule("torch.cuda", always(RISKY, "torch's CUDA toolkit {old} -> {new}: " + KERNELS)),
    Rule("torch.cudnn", always(RISKY, "cuDNN {old} -> {new}: " + KERNELS)),
    Rule("torch.hip", always(RISKY, "ROCm/HIP {old} -> {new}: " + KERNELS)),
    Rule("torch.arch_list.*", set_member(
        INFO, lost="torch here has no kernels compiled for {name}; `keel env check` tells "
                   "whether this GPU still has kernels",
        gained="torch here adds kernels for {name}")),
    Rule("torch.cpu_capability", always(RISKY, "torch CPU kernels {old} -> {new}: " + KERNELS)),
    Rule("torch.default_dtype", always(RISKY, "torch default dtype {old} -> {new}: parameters "
                                              "and new tensors get another precision")),
    Rule("torch.float32_matmul_precision", always(RISKY, "float32 matmul precision {old} -> "
                                                         "{new}: " + TF32)),
    Rule("torch.fp32_precision.*", always(RISKY, "fp32 precision of {name} {old} -> {new}: "
                                                 + TF32)),
    Rule("torch.deterministic_algorithms", always(RISKY, "deterministic algorithms {old} -> "
                                                         "{new}: other kernels are chosen")),
    Rule("torch.mkl", always(RISKY, "MKL {old} -> {new}: another BLAS computes CPU matmuls")),
    Rule("torch.mkldnn", always(RISKY, "oneDNN {old} -> {new}: CPU convolutions and RNNs "
                                       + KERNELS)),
    Rule("torch.num_threads", always(INFO, "torch threads {old} -> {new}: speed; a few CPU "
                                           "reductions reorder sums within float tolerance")),
    Rule("torch.*", always(INFO, "torch {name} {old} -> {new}: speed or bookkeeping only")),

    # -- GPU and driver --------------------------------------------------------------------------
    Rule("gpu.available", always(RISKY, "GPU available {old} -> {new}: CPU and GPU kernels "
                                        "differ, so outputs differ in low-order digits")),
    Rule("gpu.driver_version", always(RISKY, "NVIDIA driver {old} -> {new}: the driver compiles "
                                             "PTX and ships cuBLASLt heuristics; run keel env "
                                             "check")),
    Rule("gpu.cuda_driver_version", always(RISKY, "driver's CUDA {old} -> {new}: it must stay >= "
                                                  "torch's CUDA; run keel env check")),
    Rule("gpu.devices.*.name", always(RISKY, "GPU {old} -> {new}: another GPU model " + KERNELS)),
    Rule("gpu.devices.*.compute_capability", always(
        RISKY, "compute capability {old} -> {new}: another architecture " + KERNELS
               + " (or none: run keel env check)")),
    Rule("gpu.devices.*.memory_total_mb", always(INFO, "GPU memory {old} -> {new} MB: limits "
                                                       "batch sizes, not results")),
    Rule("gpu.devices.*", device_presence()),
    Rule("gpu.*", always(INFO, "GPU {name} {old} -> {new}")),

    # -- CPU and platform ------------------------------------------------------------------------
    Rule("cpu.flags.*", set_member(RISKY, lost="this CPU lacks {name}: " + SIMD.format("narrower"),
                                   gained="this CPU adds {name}: " + SIMD.format("wider"))),
    Rule("cpu.architecture", always(RISKY, "CPU architecture {old} -> {new}: " + KERNELS)),
    Rule("cpu.*", always(INFO, "CPU {name} {old} -> {new}: only its flags matter for results")),
    Rule("platform.machine", always(RISKY, "machine {old} -> {new}: " + KERNELS)),
    Rule("platform.system", always(RISKY, "operating system {old} -> {new}: other builds of "
                                          "compiled packages and another libm")),
    Rule("platform.*", always(INFO, "platform {name} {old} -> {new}")),

    # -- locale and environment variables --------------------------------------------------------
    Rule("locale.preferred_encoding", always(RISKY, "default text encoding {old} -> {new}: files "
                                                    "read without an explicit encoding decode "
                                                    "differently, changing what gets tokenized")),
    Rule("locale.utf8_mode", always(RISKY, "Python UTF-8 mode {old} -> {new}: changes the "
                                           "default text encoding")),
    Rule("locale.*", always(INFO, "locale {name} {old} -> {new}")),
    Rule("env_vars.PYTHONHASHSEED", always(RISKY, "PYTHONHASHSEED {old} -> {new}: set iteration "
                                                  "order changes, which can reorder vocabularies "
                                                  "built from sets")),
    Rule("env_vars.CUBLAS_WORKSPACE_CONFIG", always(RISKY, "CUBLAS_WORKSPACE_CONFIG {old} -> "
                                                           "{new}: decides whether cuBLAS is "
                                                           "deterministic")),
    *(Rule(f"env_vars.{name}", always(RISKY, "{name} {old} -> {new}: changes which kernels run"))
      for name in KERNEL_ENV_VARS),
    *(Rule(f"env_vars.{name}", always(RISKY, "{name} {old} -> {new}: changes how text decodes"))
      for name in DECODING_ENV_VARS),
    Rule("env_vars.*", always(INFO, "{name} {old} -> {new}: speed or device selection only")),

    # -- anything a newer capture adds -----------------------------------------------------------
    Rule("*", always(INFO, "{name} {old} -> {new}: not known to affect results")),
)
# fmt: on


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One classified change. ``old``/``new`` are None when a side does not have the key."""

    severity: Severity
    key: str
    old: Any
    new: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": str(self.severity),
            "key": self.key,
            "old": None if self.old is MISSING else self.old,
            "new": None if self.new is MISSING else self.new,
            "reason": self.reason,
        }


@dataclass
class EnvDiff:
    """Every classified difference between environment A (reference) and B."""

    differences: list[Difference] = field(default_factory=list)
    a_label: str = "A"
    b_label: str = "B"

    def has(self, severity: Severity | str) -> bool:
        """Whether any difference has exactly ``severity``."""
        return any(difference.severity == severity for difference in self.differences)

    def at_least(self, severity: Severity | str) -> list[Difference]:
        """The differences of ``severity`` or worse."""
        threshold = Severity(severity).rank
        return [d for d in self.differences if d.severity.rank >= threshold]

    def fails(self, fail_on: Severity | str = BREAKING) -> bool:
        """Whether a pipeline that fails on ``fail_on`` (or worse) should fail."""
        return bool(self.at_least(fail_on))

    def by_severity(self, severity: Severity | str) -> list[Difference]:
        return [d for d in self.differences if d.severity == severity]

    def code(self, fail_on: Severity | str = BREAKING) -> str | None:
        """The guard error code for this result: KG001 (breaking), KG002 (risky) or None."""
        if self.has(BREAKING):
            return errors.ENV_BREAKING
        if self.fails(fail_on) and self.has(RISKY):
            return errors.ENV_RISKY
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a_label,
            "b": self.b_label,
            "summary": {str(s): len(self.by_severity(s)) for s in (BREAKING, RISKY, INFO)},
            "differences": [difference.to_dict() for difference in self.differences],
        }


def diff_environments(
    a: dict[str, Any],
    b: dict[str, Any],
    required_distributions: list[str] | None = None,
    *,
    rules: Iterable[Rule] = RULES,
    a_label: str = "A",
    b_label: str = "B",
) -> EnvDiff:
    """Classify every difference between ``a`` (reference, e.g. training) and ``b``.

    ``required_distributions`` names the distributions providing components the model uses (see
    :func:`distributions_providing`); when None, rules assume any of them may be used.
    """
    rules = tuple(rules)
    required = None
    if required_distributions is not None:
        required = frozenset(canonicalize_name(name) for name in required_distributions)
    context = Context(required)
    changes: list[Change] = []
    _walk(a, b, "", changes)
    differences = []
    for change in changes:
        verdict = classify(change, context, rules)
        if verdict is not None:
            differences.append(
                Difference(verdict[0], change.key, change.old, change.new, verdict[1])
            )
    differences.sort(key=lambda d: (-d.severity.rank, d.key))
    return EnvDiff(differences, a_label, b_label)


def classify(change: Change, context: Context, rules: Iterable[Rule] = RULES) -> Verdict:
    """The verdict of the first rule whose pattern matches the change's key."""
    for rule in rules:
        if rule.matches(change.key):
            return rule.classify(change, context)
    return INFO, f"{change.key} changed"


def _walk(old: Any, new: Any, key: str, changes: list[Change]) -> None:
    """Collect changed leaves under dotted keys.

    Objects recurse key by key; lists of objects recurse by index; set-like lists
    (:data:`SET_KEYS`) give one key per element. A part missing on one side is one change at its
    own key (a whole GPU, a whole section), not one per field inside it.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        for name in sorted(old.keys() | new.keys(), key=str):
            _walk(old.get(name, MISSING), new.get(name, MISSING), _join(key, name), changes)
    elif key in SET_KEYS and isinstance(old, list) and isinstance(new, list):
        before, after = set(map(str, old)), set(map(str, new))
        for element in sorted(before ^ after):
            changes.append(
                Change(
                    _join(key, element),
                    True if element in before else MISSING,
                    True if element in after else MISSING,
                )
            )
    elif _records(old) and _records(new):
        for index in range(max(len(old), len(new))):
            changes_old = old[index] if index < len(old) else MISSING
            changes_new = new[index] if index < len(new) else MISSING
            _walk(changes_old, changes_new, _join(key, str(index)), changes)
    elif old != new or type(old) is not type(new):
        changes.append(Change(key, old, new))


def _records(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _join(prefix: str, name: Any) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def distributions_providing(module_names: Iterable[str]) -> list[str]:
    """The installed distributions that provide these modules (e.g. component classes' modules).

    Feed the result to ``diff_environments(required_distributions=...)``.
    """
    providers = importlib.metadata.packages_distributions()
    found = set()
    for module_name in module_names:
        top_level = module_name.split(".", 1)[0]
        for distribution in providers.get(top_level, []):
            found.add(canonicalize_name(distribution))
    return sorted(found)


def _worst(verdicts: list[tuple[Severity, str]]) -> tuple[Severity, str]:
    worst = max(verdict[0].rank for verdict in verdicts)
    return Severity(next(v[0] for v in verdicts if v[0].rank == worst)), "; ".join(
        v[1] for v in sorted(verdicts, key=lambda v: -v[0].rank)
    )


def _show(value: Any) -> str:
    if value is MISSING:
        return "(absent)"
    if value is None:
        return "none"
    return str(value)
