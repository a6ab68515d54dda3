"""The walk itself: drive /dev/kvm through the lifecycle the site traces.

Each step records what user space did, what came back, and which v3.8 kernel
functions answered, so the same record can be printed for a reader or dumped
as JSON for a test.  Nothing here prints; see report.py.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import grp
import mmap
import os
import pwd
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import uapi

DEFAULT_DEVICE = "/dev/kvm"
SYS_MODULE = "/sys/module"
PROC_MODULES = "/proc/modules"

# Exit codes: 2 is argparse's own for a bad command line.
EXIT_OK = 0
EXIT_NO_DEVICE = 1
EXIT_IOCTL_FAILED = 3

# The guest: 16-bit real-mode code at guest-physical 0x1000.  It writes four
# bytes to the COM1 data port one `out` at a time (so each is its own
# KVM_EXIT_IO) and halts.  Real mode needs no page tables or descriptors,
# which keeps the register setup to a handful of fields.
GUEST_PORT = 0x3F8
GUEST_TEXT = b"KVM\n"
GUEST_LOAD = 0x1000
GUEST_MEM_SIZE = 0x10000  # 64 KiB at guest-physical 0, slot 0
TSS_ADDR = 0xFFFBD000  # three pages just below the BIOS, where QEMU puts it


def guest_code(text: bytes = GUEST_TEXT, port: int = GUEST_PORT) -> bytes:
    """Machine code: mov dx, port; then per byte mov al, b; out dx, al; finally hlt."""
    code = bytearray(b"\xba" + port.to_bytes(2, "little"))  # mov dx, imm16
    for byte in text:
        code += bytes((0xB0, byte))  # mov al, imm8
        code += b"\xee"  # out dx, al
    code += b"\xf4"  # hlt
    return bytes(code)


# --- errors ----------------------------------------------------------------


def errno_text(err: int | None) -> str:
    """'EACCES (Permission denied)': the symbolic name a reader can grep for, and the message."""
    if err is None:
        return "unknown error"
    name = errno.errorcode.get(err, f"errno {err}")
    return f"{name} ({os.strerror(err)})"


class LabError(Exception):
    """A failure the lab explains in one sentence, never with a traceback."""

    exit_code = EXIT_IOCTL_FAILED


class IoctlError(LabError):
    """An ioctl that the kernel refused; keeps the ioctl's name and errno for the report."""

    def __init__(self, name: str, err: OSError) -> None:
        self.name = name
        self.errno = err.errno
        super().__init__(f"{name} failed: {errno_text(err.errno)}")


class DeviceError(LabError):
    """/dev/kvm could not be opened, with the reason worked out."""

    exit_code = EXIT_NO_DEVICE

    def __init__(self, path: str, err: int | None, message: str) -> None:
        self.path = path
        self.errno = err
        super().__init__(message)


def _loaded_kvm_modules(sys_module: str, proc_modules: str) -> tuple[list[str], list[str] | None]:
    """KVM modules seen in /sys/module (also lists built-ins) and /proc/modules (None if unreadable)."""
    try:
        in_sys = sorted(n for n in os.listdir(sys_module) if n == "kvm" or n.startswith("kvm_"))
    except OSError:
        in_sys = []
    try:
        with open(proc_modules, encoding="ascii", errors="replace") as f:
            in_proc: list[str] | None = sorted(
                line.split()[0] for line in f if line.split() and (line.split()[0] == "kvm" or line.startswith("kvm_"))
            )
    except OSError:
        in_proc = None
    return in_sys, in_proc


def _module_story(sys_module: str, proc_modules: str) -> str:
    """One sentence on whether the kvm module is there, from both places the kernel shows it."""
    in_sys, in_proc = _loaded_kvm_modules(sys_module, proc_modules)
    proc_note = (
        f"{proc_modules} is not readable here"
        if in_proc is None
        else f"{proc_modules} lists {', '.join(in_proc) or 'no kvm module'}"
    )
    if "kvm" not in in_sys:
        vendor = "kvm_intel" if _cpu_has("vmx") else "kvm_amd" if _cpu_has("svm") else "kvm_intel or kvm_amd"
        return (
            f"the kvm module is not loaded ({sys_module}/kvm does not exist; {proc_note}). "
            f"Load it with `modprobe {vendor}`; if that fails, check that virtualization "
            "is enabled in the firmware (or, in a VM, that nested virtualization is exposed)"
        )
    return (
        f"the kvm module is loaded ({', '.join(in_sys)} in {sys_module}; {proc_note}), "
        "so only the device node is missing: devtmpfs creates /dev/kvm when kvm registers "
        "its misc device, and a container sees it only if it is passed in "
        "(docker run --device /dev/kvm)"
    )


def _cpu_has(flag: str) -> bool:
    """Whether /proc/cpuinfo advertises a CPU flag such as vmx; False when unreadable."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return flag in line.split()
    except OSError:
        pass
    return False


def _permission_story(path: str) -> str:
    """Who owns the node and which group the user would need; the usual fix for EACCES."""
    try:
        st = os.stat(path)
    except OSError as err:
        return (
            f"even stat({path}) fails with {errno_text(err.errno)}: "
            "a directory on the way is not searchable for this user"
        )
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    mode = stat.filemode(st.st_mode)
    groups = sorted(set(os.getgroups()) | {os.getgid()})
    text = f"{path} is {mode} {owner}:{group}; you are uid {os.getuid()}"
    group_rw = st.st_mode & 0o060 == 0o060
    if st.st_mode & 0o006 == 0o006 or (group_rw and st.st_gid in groups):
        return text + (
            ", and the mode bits let you in, so something else refuses "
            "(an LSM such as SELinux or AppArmor, or a device cgroup in a container)"
        )
    if not group_rw:
        return text + (
            f", and the mode gives group {group!r} no read-write access; the usual node is "
            "crw-rw---- root:kvm (udev's kvm rule), so this node was made by hand or is not the KVM device"
        )
    return text + (
        f" and not in group {group!r}: add yourself with `sudo usermod -aG {group} $USER` "
        f"and log in again (or try it at once with `sg {group} -c 'python -m kvmlab'`)"
    )


def explain_open_error(
    path: str,
    err: OSError,
    sys_module: str = SYS_MODULE,
    proc_modules: str = PROC_MODULES,
) -> DeviceError:
    """Turn a failed open() of the KVM device into a DeviceError that says why, plainly."""
    code = err.errno
    head = f"cannot open {path}: {errno_text(code)}"
    # each story is one clause; the caller's sentence ends it
    if code == errno.ENOENT:
        story = _module_story(sys_module, proc_modules)
    elif code in (errno.ENODEV, errno.ENXIO):
        story = "the node exists but no driver answers it; " + _module_story(sys_module, proc_modules)
    elif code in (errno.EACCES, errno.EPERM):
        story = "no permission: " + _permission_story(path)
    elif code == errno.EROFS:
        story = "it is on a read-only file system or was passed in read-only; KVM needs O_RDWR"
    else:
        story = "the kernel gave no more detail"
    return DeviceError(path, code, f"{head}; {story}")


# --- kernel path descriptions ----------------------------------------------


@dataclass
class KernelPath:
    """Which v3.8 functions answered one user-space action, and where the site traces them."""

    action: str
    functions: list[str]
    section: str | None
    source: str

    def as_dict(self, site_base: str) -> dict[str, Any]:
        return {
            "action": self.action,
            "functions": self.functions,
            "source": self.source,
            "section": self.section,
            "link": site_link(site_base, self.section) if self.section else None,
        }


def site_link(site_base: str, section: str) -> str:
    """Join the site base (a relative path or URL) and a page#anchor."""
    if not site_base:
        return section
    return site_base.rstrip("/") + "/" + section


KVM_MAIN = "virt/kvm/kvm_main.c"
X86 = "arch/x86/kvm/x86.c"
VMX = "arch/x86/kvm/vmx.c"


def _path(action: str, chain: str, section: str | None, source: str) -> KernelPath:
    """A KernelPath from 'a -> b -> c' (each arrow: calls, or then returns to)."""
    return KernelPath(action, chain.split(" -> "), section, source)


# One action may need several paths; each path is a call chain read left to right.
PATHS: dict[str, list[KernelPath]] = {
    "open": [
        _path(
            "open(/dev/kvm)",
            "misc_open -> (kvm_dev.fops = &kvm_chardev_ops)",
            "init.html#dev-kvm",
            "drivers/char/misc.c, " + KVM_MAIN,
        ),
    ],
    "dev_ioctl": [
        _path("KVM_GET_API_VERSION, KVM_GET_VCPU_MMAP_SIZE", "kvm_dev_ioctl", "init.html#dev-kvm", KVM_MAIN),
        _path(
            "KVM_CHECK_EXTENSION",
            "kvm_dev_ioctl -> kvm_dev_ioctl_check_extension_generic -> kvm_dev_ioctl_check_extension",
            "init.html#dev-kvm",
            KVM_MAIN + ", " + X86,
        ),
    ],
    "create_vm": [
        _path(
            "KVM_CREATE_VM",
            "kvm_dev_ioctl -> kvm_dev_ioctl_create_vm -> kvm_create_vm -> kvm_arch_init_vm",
            "vm.html#create-vm",
            KVM_MAIN + ", " + X86,
        ),
        _path(
            "the VM fd",
            'kvm_dev_ioctl_create_vm -> anon_inode_getfd("kvm-vm", &kvm_vm_fops)',
            "vm.html#vm-fd",
            KVM_MAIN + ", fs/anon_inodes.c",
        ),
    ],
    "memory": [
        _path(
            "KVM_SET_USER_MEMORY_REGION",
            "kvm_vm_ioctl -> kvm_vm_ioctl_set_memory_region -> kvm_set_memory_region -> __kvm_set_memory_region",
            "vm.html#memory-slots",
            KVM_MAIN,
        ),
    ],
    "create_vcpu": [
        _path(
            "KVM_CREATE_VCPU",
            "kvm_vm_ioctl -> kvm_vm_ioctl_create_vcpu -> kvm_arch_vcpu_create -> vmx_create_vcpu -> kvm_vcpu_init",
            "vcpu.html#create-vcpu",
            KVM_MAIN + ", " + X86 + ", " + VMX,
        ),
        _path(
            "the vcpu fd",
            'kvm_vm_ioctl_create_vcpu -> create_vcpu_fd -> anon_inode_getfd("kvm-vcpu", &kvm_vcpu_fops)',
            "vcpu.html#vcpu-fd",
            KVM_MAIN + ", fs/anon_inodes.c",
        ),
        _path("the kvm_run page", "kvm_vcpu_init -> alloc_page (vcpu->run)", "vcpu.html#kvm-run-page", KVM_MAIN),
        _path(
            "mmap of the vcpu fd", "kvm_vcpu_mmap -> (first touch) kvm_vcpu_fault", "vcpu.html#kvm-run-page", KVM_MAIN
        ),
    ],
    "setup": [
        _path(
            "KVM_SET_TSS_ADDR",
            "kvm_vm_ioctl -> kvm_arch_vm_ioctl -> kvm_vm_ioctl_set_tss_addr -> vmx_set_tss_addr",
            "vm.html#vm-fd",
            KVM_MAIN + ", " + X86 + ", " + VMX,
        ),
        _path(
            "KVM_GET_SREGS",
            "kvm_vcpu_ioctl -> kvm_arch_vcpu_ioctl_get_sregs",
            "vcpu.html#vcpu-fd",
            KVM_MAIN + ", " + X86,
        ),
        _path(
            "KVM_SET_SREGS",
            "kvm_vcpu_ioctl -> kvm_arch_vcpu_ioctl_set_sregs",
            "vcpu.html#vcpu-fd",
            KVM_MAIN + ", " + X86,
        ),
        _path(
            "KVM_SET_REGS", "kvm_vcpu_ioctl -> kvm_arch_vcpu_ioctl_set_regs", "vcpu.html#vcpu-fd", KVM_MAIN + ", " + X86
        ),
        _path(
            "KVM_GET_REGS", "kvm_vcpu_ioctl -> kvm_arch_vcpu_ioctl_get_regs", "vcpu.html#vcpu-fd", KVM_MAIN + ", " + X86
        ),
    ],
    "run": [
        _path(
            "KVM_RUN",
            "kvm_vcpu_ioctl -> kvm_arch_vcpu_ioctl_run -> __vcpu_run -> vcpu_enter_guest -> vmx_vcpu_run",
            "run.html#kvm-run",
            KVM_MAIN + ", " + X86 + ", " + VMX,
        ),
        _path(
            "each exit",
            "vcpu_enter_guest -> vmx_handle_exit -> kvm_vmx_exit_handlers[reason]",
            "run.html#exit-handlers",
            X86 + ", " + VMX,
        ),
        _path(
            "back to user space",
            "the exit handler returns 0 -> vcpu_enter_guest returns 0 -> __vcpu_run stops looping"
            " -> kvm_arch_vcpu_ioctl_run returns -> ioctl(KVM_RUN) returns 0",
            "run.html#back-to-user-space",
            X86 + ", " + KVM_MAIN,
        ),
    ],
    # Shown in step 6 only for the fds that were actually closed.
    "close_vcpu": [_path("close(vcpu fd)", "kvm_vcpu_release -> kvm_put_kvm", None, KVM_MAIN)],
    "close_vm": [
        _path("close(VM fd)", "kvm_vm_release -> kvm_put_kvm -> kvm_destroy_vm", None, KVM_MAIN),
    ],
}

# Which handler produced each exit reason on the v3.8 VMX path, as a call chain.
EXIT_HANDLERS: dict[int, list[str]] = {
    uapi.KVM_EXIT_IO: [
        "vmx_handle_exit",
        "handle_io",
        "kvm_fast_pio_out",
        "emulator_pio_out_emulated",
        "emulator_pio_in_out",
    ],
    uapi.KVM_EXIT_HLT: ["vmx_handle_exit", "handle_halt", "kvm_emulate_halt"],
    uapi.KVM_EXIT_SHUTDOWN: ["vmx_handle_exit", "handle_triple_fault"],
    uapi.KVM_EXIT_FAIL_ENTRY: ["vmx_handle_exit (entry failed: exit reason bit 31 or vmx->fail)"],
    uapi.KVM_EXIT_INTERNAL_ERROR: [
        "vmx_handle_exit",
        "handle_invalid_guest_state (emulation), or vmx_handle_exit itself (event delivery)",
    ],
    uapi.KVM_EXIT_MMIO: ["vmx_handle_exit", "handle_ept_violation", "kvm_mmu_page_fault", "x86_emulate_instruction"],
    uapi.KVM_EXIT_UNKNOWN: ["vmx_handle_exit (no entry in kvm_vmx_exit_handlers)"],
    uapi.KVM_EXIT_INTR: ["__vcpu_run (signal_pending: -EINTR)"],
}


# --- records ---------------------------------------------------------------


@dataclass
class Step:
    """One step of the walk as the report shows it."""

    number: int
    key: str
    title: str
    status: str = "pending"  # ok | failed | host-refused | not-run
    facts: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    kernel: list[KernelPath] = field(default_factory=list)
    exits: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def say(self, line: str) -> None:
        """Add one human-readable line."""
        self.lines.append(line)

    def as_dict(self, site_base: str) -> dict[str, Any]:
        return {
            "step": self.number,
            "key": self.key,
            "title": self.title,
            "status": self.status,
            "facts": self.facts,
            "lines": self.lines,
            "kernel": [k.as_dict(site_base) for k in self.kernel],
            "exits": self.exits,
            "error": self.error,
        }


@dataclass
class Result:
    """The whole walk: steps, whether the guest ran, and the exit code to leave with."""

    device: str
    steps: list[Step] = field(default_factory=list)
    guest_ran: bool = False
    verdict: str = ""
    exit_code: int = EXIT_OK
    error: str | None = None

    def as_dict(self, site_base: str) -> dict[str, Any]:
        return {
            "device": self.device,
            "site_base": site_base,
            "guest_ran": self.guest_ran,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "error": self.error,
            "steps": [s.as_dict(site_base) for s in self.steps],
        }


# --- low-level helpers -----------------------------------------------------

_libc: ctypes.CDLL | None = None


def _ioctl_int(fd: int, request: int, arg: int) -> int:
    """ioctl with an unsigned long argument.

    fcntl.ioctl passes integers as a C int, which cannot carry an address such as
    KVM_SET_TSS_ADDR's 0xfffbd000; libc's ioctl through ctypes can.
    """
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    ret = _libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), ctypes.c_ulong(arg))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def ioctl(fd: int, name: str, arg: int | ctypes.Structure = 0) -> int:
    """An ioctl that names itself when the kernel says no; ctypes args are filled in place."""
    request = uapi.IOCTL_NAMES[name]
    while True:
        try:
            if isinstance(arg, ctypes.Structure):
                return fcntl.ioctl(fd, request, arg, True)
            return _ioctl_int(fd, request, arg)
        except InterruptedError:
            if name == "KVM_RUN":
                raise  # the caller reports KVM_EXIT_INTR
            continue
        except OSError as err:
            raise IoctlError(name, err) from None


def fd_link(fd: int) -> str:
    """What /proc/self/fd says the descriptor is: for KVM objects, anon_inode:<name>."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError as err:
        return f"(readlink failed: {errno_text(err.errno)})"


def maps_line(address: int) -> str | None:
    """The /proc/self/maps line of the mapping that starts at address, if any."""
    prefix = f"{address:x}-"
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(prefix):
                    return " ".join(line.split())
    except OSError:
        return None
    return None


class Mapping:
    """An mmap plus the address KVM needs; the ctypes view is dropped before unmapping."""

    def __init__(self, mm: mmap.mmap) -> None:
        self.mm = mm
        self._anchor: ctypes.c_char | None = ctypes.c_char.from_buffer(mm)
        self.address = ctypes.addressof(self._anchor)

    def close(self) -> None:
        """Release the exported buffer first, or mmap.close() refuses."""
        self._anchor = None
        self.mm.close()


# --- the walk --------------------------------------------------------------


class Lab:
    """Drives one VM with one vcpu through steps 1 to 6 and records each."""

    def __init__(
        self,
        device: str = DEFAULT_DEVICE,
        max_exits: int = 16,
        sys_module: str = SYS_MODULE,
        proc_modules: str = PROC_MODULES,
    ) -> None:
        self.device = device
        self.max_exits = max_exits
        self.sys_module = sys_module
        self.proc_modules = proc_modules
        self.result = Result(device=device)
        self.closed: list[str] = []
        self.closed_kinds: list[str] = []

    def _step(self, number: int, key: str, title: str, *paths: str) -> Step:
        step = Step(number, key, title, kernel=[k for p in paths for k in PATHS[p]])
        self.result.steps.append(step)
        return step

    def run(self) -> Result:
        """Walk the lifecycle; every failure ends as a Result, never as an exception."""
        held: list[Callable[[], None]] = []
        try:
            self._walk(held)
        except LabError as err:
            self._fail(err)
        finally:
            self._close(held)
        return self.result

    def _fail(self, err: LabError) -> None:
        current = next((s for s in reversed(self.result.steps) if s.status == "pending"), None)
        if current is not None:
            current.status = "failed"
            current.error = str(err)
        self.result.error = str(err)
        self.result.exit_code = err.exit_code
        self.result.verdict = str(err)

    def _hold(self, held: list[Callable[[], None]], what: str, closer: Callable[[], None], kind: str = "") -> None:
        """Remember a resource; kind ('vm', 'vcpu') picks the kernel path shown on close."""

        def close_and_note() -> None:
            closer()
            self.closed.append(what)
            if kind:
                self.closed_kinds.append(kind)

        held.append(close_and_note)

    def _close(self, held: list[Callable[[], None]]) -> None:
        """Undo everything newest first: unmap before closing the fd the mapping came from."""
        if not held:
            return
        step = self._step(6, "close", "Close and unmap everything")
        while held:
            closer = held.pop()
            try:
                closer()
            except OSError as err:
                step.say(f"cleanup error: {errno_text(err.errno)}")
        for what in self.closed:
            step.say(what)
        step.facts["closed"] = list(self.closed)
        for kind in ("vcpu", "vm"):
            if kind in self.closed_kinds:
                step.kernel += PATHS[f"close_{kind}"]
        if {"vm", "vcpu"} <= set(self.closed_kinds):
            step.say("the vcpu fd holds a reference on the VM, so kvm_destroy_vm runs only once both fds are closed")
        step.status = "ok"

    def _walk(self, held: list[Callable[[], None]]) -> None:
        kvm = self._open_device(held)
        vm = self._create_vm(kvm, held)
        self._set_memory(vm, held)
        vcpu, run_map = self._create_vcpu(kvm, vm, held)
        self._run_guest(vm, vcpu, run_map)

    # step 1
    def _open_device(self, held: list[Callable[[], None]]) -> int:
        step = self._step(1, "dev-kvm", f"Open {self.device} and ask it about itself", "open", "dev_ioctl")
        try:
            kvm = os.open(self.device, os.O_RDWR | os.O_CLOEXEC)
        except OSError as err:
            step.kernel = []  # nothing of KVM's ran
            raise explain_open_error(self.device, err, self.sys_module, self.proc_modules) from None
        self._hold(held, f"close({kvm}) {self.device}", lambda: os.close(kvm))
        st = os.fstat(kvm)
        step.facts["fd"] = kvm
        step.facts["fd_link"] = fd_link(kvm)
        if stat.S_ISCHR(st.st_mode):
            dev = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
            step.facts["char_device"] = dev
            known = " (misc major 10, KVM_MINOR 232)" if dev == "10:232" else ""
            step.say(f"fd {kvm} -> {step.facts['fd_link']}, character device {dev}{known}")
        else:
            step.say(f"fd {kvm} -> {step.facts['fd_link']} (not a character device)")
        modules, _ = _loaded_kvm_modules(self.sys_module, self.proc_modules)
        step.facts["kvm_modules"] = modules
        vendor = [m for m in modules if m != "kvm"]
        if "kvm_intel" in vendor:
            step.say("vendor module: kvm_intel, today's descendant of the v3.8 VMX code the site traces")
        elif vendor:
            step.say(f"vendor module: {', '.join(vendor)}; the site traces v3.8's kvm_intel (VMX),")
            step.say("  so below the generic layer this host runs other handlers")
        try:
            version = ioctl(kvm, "KVM_GET_API_VERSION")
        except IoctlError as err:
            if err.errno == errno.ENOTTY:
                step.kernel = []
                raise DeviceError(
                    self.device,
                    err.errno,
                    f"{err}: {self.device} opened, but it is not the KVM device (nothing there answers KVM ioctls)",
                ) from None
            raise
        step.facts["api_version"] = version
        step.say(
            f"KVM_GET_API_VERSION = {version}"
            + (
                ""
                if version == uapi.KVM_API_VERSION
                else f" (expected {uapi.KVM_API_VERSION}: this lab speaks only that version)"
            )
        )
        if version != uapi.KVM_API_VERSION:
            raise LabError(f"KVM_GET_API_VERSION returned {version}, not {uapi.KVM_API_VERSION}")
        mmap_size = ioctl(kvm, "KVM_GET_VCPU_MMAP_SIZE")
        step.facts["vcpu_mmap_size"] = mmap_size
        pages = mmap_size // mmap.PAGESIZE
        step.say(f"KVM_GET_VCPU_MMAP_SIZE = {mmap_size} ({pages} pages; v3.8 on x86 says 3:")
        step.say("  kvm_run, the PIO data page, the coalesced MMIO ring)")
        caps: dict[str, int] = {}
        for name, number in uapi.CAPABILITIES.items():
            caps[name] = ioctl(kvm, "KVM_CHECK_EXTENSION", number)
            meaning = uapi.CAPABILITY_MEANING.get(name)
            answer = str(caps[name]) if meaning and caps[name] else ("yes" if caps[name] else "no")
            step.say(f"KVM_CHECK_EXTENSION({name}) = {answer}" + (f"  [{meaning}]" if meaning else ""))
        step.facts["capabilities"] = caps
        step.status = "ok"
        return kvm

    # step 2
    def _create_vm(self, kvm: int, held: list[Callable[[], None]]) -> int:
        step = self._step(2, "create-vm", "Create a VM", "create_vm")
        vm = ioctl(kvm, "KVM_CREATE_VM", 0)
        self._hold(held, f"close({vm}) VM fd", lambda: os.close(vm), "vm")
        step.facts["fd"] = vm
        step.facts["fd_link"] = fd_link(vm)
        step.say(f"KVM_CREATE_VM(type 0) = fd {vm} -> {step.facts['fd_link']}")
        step.status = "ok"
        return vm

    # step 3
    def _set_memory(self, vm: int, held: list[Callable[[], None]]) -> None:
        step = self._step(3, "memory", "Give the VM memory", "memory")
        mm = mmap.mmap(-1, GUEST_MEM_SIZE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, mmap.PROT_READ | mmap.PROT_WRITE)
        mem = Mapping(mm)
        self._hold(held, f"munmap({mem.address:#x}, {GUEST_MEM_SIZE:#x}) guest memory", mem.close)
        code = guest_code()
        mm[GUEST_LOAD : GUEST_LOAD + len(code)] = code
        region = uapi.KvmUserspaceMemoryRegion(
            slot=0,
            flags=0,
            guest_phys_addr=0,
            memory_size=GUEST_MEM_SIZE,
            userspace_addr=mem.address,
        )
        ioctl(vm, "KVM_SET_USER_MEMORY_REGION", region)
        step.facts.update(
            slot=0,
            guest_phys_addr=0,
            memory_size=GUEST_MEM_SIZE,
            userspace_addr=mem.address,
            code=code.hex(),
            code_at=GUEST_LOAD,
        )
        step.say(f"mmap {GUEST_MEM_SIZE:#x} bytes anonymous at {mem.address:#x}")
        step.say(
            f"KVM_SET_USER_MEMORY_REGION slot 0: guest-physical 0x0-{GUEST_MEM_SIZE - 1:#x} -> user {mem.address:#x}"
        )
        step.say(f"guest code at guest-physical {GUEST_LOAD:#x}: {code.hex(' ')}")
        step.say(f"  (mov dx,{GUEST_PORT:#x}; then mov al,<byte>; out dx,al for each of {GUEST_TEXT!r}; hlt)")
        step.status = "ok"

    # step 4
    def _create_vcpu(self, kvm: int, vm: int, held: list[Callable[[], None]]) -> tuple[int, Mapping]:
        step = self._step(4, "create-vcpu", "Create vcpu 0 and map its kvm_run page", "create_vcpu")
        vcpu = ioctl(vm, "KVM_CREATE_VCPU", 0)
        self._hold(held, f"close({vcpu}) vcpu fd", lambda: os.close(vcpu), "vcpu")
        step.facts["fd"] = vcpu
        step.facts["fd_link"] = fd_link(vcpu)
        step.say(f"KVM_CREATE_VCPU(0) = fd {vcpu} -> {step.facts['fd_link']}")
        if step.facts["fd_link"] == "anon_inode:kvm-vcpu":
            step.say("  (this is v3.8's name; later kernels append the vcpu id: kvm-vcpu:0)")
        elif step.facts["fd_link"].startswith("anon_inode:kvm-vcpu:"):
            step.say("  (v3.8 named it plain kvm-vcpu; later kernels append the vcpu id)")
        size = self.result.steps[0].facts["vcpu_mmap_size"]
        try:
            mm = mmap.mmap(vcpu, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as err:
            raise LabError(f"mmap of the vcpu fd failed: {errno_text(err.errno)}") from None
        run_map = Mapping(mm)
        self._hold(held, f"munmap({run_map.address:#x}, {size:#x}) kvm_run", run_map.close)
        run = uapi.KvmRun.from_buffer_copy(mm[: ctypes.sizeof(uapi.KvmRun)])
        step.facts.update(
            run_address=run_map.address,
            run_size=size,
            exit_reason_before_run=run.exit_reason,
            maps=maps_line(run_map.address),
        )
        step.say(
            f"mmap(vcpu fd, {size}) = {run_map.address:#x}: page 0 is struct kvm_run, "
            f"page {uapi.KVM_PIO_PAGE_OFFSET} the PIO data page"
        )
        if step.facts["maps"]:
            step.say(f"  /proc/self/maps: {step.facts['maps']}")
        step.say(
            f"kvm_run.exit_reason before any KVM_RUN = {run.exit_reason} ({uapi.EXIT_NAMES.get(run.exit_reason, '?')})"
        )
        step.status = "ok"
        return vcpu, run_map

    # step 5
    def _run_guest(self, vm: int, vcpu: int, run_map: Mapping) -> None:
        step = self._step(5, "run", "Set up real mode and run the guest", "setup", "run")
        try:
            self._setup_registers(vm, vcpu, step)
            self._run_loop(vcpu, run_map, step)
        except IoctlError as err:
            # Steps 1-4 worked, so a refusal here is the host's, not the user's.
            step.error = str(err)
            self._host_refused(step, f"{err}")

    def _setup_registers(self, vm: int, vcpu: int, step: Step) -> None:
        try:
            ioctl(vm, "KVM_SET_TSS_ADDR", TSS_ADDR)
            step.say(f"KVM_SET_TSS_ADDR({TSS_ADDR:#x}): three pages VMX needs for real mode without unrestricted guest")
            step.facts["tss_addr"] = TSS_ADDR
        except IoctlError as err:
            step.say(f"{err} (not fatal: only hosts without unrestricted guest need it)")
        sregs = uapi.KvmSregs()
        ioctl(vcpu, "KVM_GET_SREGS", sregs)
        step.say(
            f"KVM_GET_SREGS: after reset cs.selector={sregs.cs.selector:#x} "
            f"cs.base={sregs.cs.base:#x} cr0={sregs.cr0:#x}"
        )
        step.facts["reset_cs"] = {"selector": sregs.cs.selector, "base": sregs.cs.base}
        step.facts["reset_cr0"] = sregs.cr0
        sregs.cs.selector = 0
        sregs.cs.base = 0
        ioctl(vcpu, "KVM_SET_SREGS", sregs)
        step.say("KVM_SET_SREGS: cs.selector=0 cs.base=0 (still real mode: cr0.PE=0)")
        regs = uapi.KvmRegs(rip=GUEST_LOAD, rflags=0x2)
        ioctl(vcpu, "KVM_SET_REGS", regs)
        step.say(f"KVM_SET_REGS: rip={GUEST_LOAD:#x} rflags=0x2 (bit 1 is reserved, always 1)")

    def _run_loop(self, vcpu: int, run_map: Mapping, step: Step) -> None:
        mm = run_map.mm
        output = bytearray()
        for i in range(1, self.max_exits + 1):
            try:
                ioctl(vcpu, "KVM_RUN")
            except InterruptedError:
                step.exits.append(
                    {
                        "n": i,
                        "reason": uapi.KVM_EXIT_INTR,
                        "name": "KVM_EXIT_INTR",
                        "handler": EXIT_HANDLERS[uapi.KVM_EXIT_INTR],
                    }
                )
                step.say(f"exit {i}: KVM_RUN returned EINTR (a signal), running again")
                continue
            run = uapi.KvmRun.from_buffer_copy(mm[: ctypes.sizeof(uapi.KvmRun)])
            record = describe_exit(run, mm)
            record["n"] = i
            step.exits.append(record)
            step.say(f"exit {i}: {record['text']}")
            reason = run.exit_reason
            if reason == uapi.KVM_EXIT_IO and run.u.io.direction == uapi.KVM_EXIT_IO_OUT:
                output += bytes.fromhex(record["data"])
                continue
            if reason == uapi.KVM_EXIT_HLT:
                regs = uapi.KvmRegs()
                ioctl(vcpu, "KVM_GET_REGS", regs)
                step.facts["rip_after_hlt"] = regs.rip
                step.facts["output"] = output.decode("latin-1")
                step.say(
                    f"KVM_GET_REGS after hlt: rip={regs.rip:#x} (just past the hlt at "
                    f"{GUEST_LOAD + len(guest_code()) - 1:#x})"
                )
                step.say(f"the guest wrote {bytes(output)!r} to port {GUEST_PORT:#x}")
                if bytes(output) == GUEST_TEXT:
                    step.status = "ok"
                    self.result.guest_ran = True
                    self.result.verdict = (
                        f"the guest ran: {len(GUEST_TEXT)} KVM_EXIT_IO exits and a KVM_EXIT_HLT, "
                        "as the traced path predicts"
                    )
                else:
                    self._host_refused(step, f"the guest halted but wrote {bytes(output)!r}, not {GUEST_TEXT!r}")
                return
            if reason == uapi.KVM_EXIT_MMIO:
                continue
            self._host_refused(step, record["text"])
            return
        step.facts["output"] = output.decode("latin-1")
        self._host_refused(step, f"no KVM_EXIT_HLT within {self.max_exits} exits")

    def _host_refused(self, step: Step, why: str) -> None:
        step.status = "host-refused"
        step.facts["host_refused"] = why
        self.result.guest_ran = False
        self.result.verdict = (
            "this host could not run the real-mode guest (" + why + "). Steps 1-4 show the "
            "kernel objects all the same. This is the host's limit, not a mistake on your side: "
            "some nested or paravirtual hosts refuse real-mode code."
        )
        self.result.exit_code = EXIT_OK


def describe_exit(run: uapi.KvmRun, mm: mmap.mmap | bytes) -> dict[str, Any]:
    """Name an exit and decode its union member, as user space must after each KVM_RUN."""
    reason = run.exit_reason
    name = uapi.EXIT_NAMES.get(reason, f"exit reason {reason}")
    record: dict[str, Any] = {"reason": reason, "name": name, "handler": EXIT_HANDLERS.get(reason, [])}
    if reason == uapi.KVM_EXIT_IO:
        io = run.u.io
        length = io.size * io.count
        data = bytes(mm[io.data_offset : io.data_offset + length])
        direction = "out" if io.direction == uapi.KVM_EXIT_IO_OUT else "in"
        record.update(
            direction=direction, port=io.port, size=io.size, count=io.count, data_offset=io.data_offset, data=data.hex()
        )
        record["text"] = (
            f"{name} {direction} port={io.port:#x} size={io.size} count={io.count} "
            f"data_offset={io.data_offset:#x} data={data!r}"
        )
    elif reason == uapi.KVM_EXIT_HLT:
        record["text"] = f"{name}: hlt, and with no in-kernel irqchip user space gets the halt"
    elif reason == uapi.KVM_EXIT_INTERNAL_ERROR:
        internal = run.u.internal
        ndata = min(internal.ndata, 16)
        sub = internal.suberror
        record.update(
            suberror=sub,
            suberror_name=uapi.INTERNAL_ERROR_NAMES.get(sub, f"suberror {sub}"),
            meaning=uapi.INTERNAL_ERROR_MEANING.get(sub, "not a suberror this lab knows"),
            data=[internal.data[i] for i in range(ndata)],
        )
        record["text"] = f"{name} suberror={sub} {record['suberror_name']}: {record['meaning']}" + (
            f"; data={[hex(d) for d in record['data']]}" if ndata else ""
        )
    elif reason == uapi.KVM_EXIT_FAIL_ENTRY:
        value = run.u.fail_entry.hardware_entry_failure_reason
        record.update(hardware_entry_failure_reason=value, meaning=explain_entry_failure(value))
        record["text"] = f"{name} hardware_entry_failure_reason={value:#x}: {record['meaning']}"
    elif reason == uapi.KVM_EXIT_SHUTDOWN:
        record["text"] = f"{name}: the guest triple-faulted (or the host would not go on)"
    elif reason == uapi.KVM_EXIT_MMIO:
        mmio = run.u.mmio
        record.update(phys_addr=mmio.phys_addr, len=mmio.len, is_write=bool(mmio.is_write))
        record["text"] = f"{name} {'write' if mmio.is_write else 'read'} phys_addr={mmio.phys_addr:#x} len={mmio.len}"
    elif reason == uapi.KVM_EXIT_UNKNOWN:
        value = run.u.hw.hardware_exit_reason
        record["hardware_exit_reason"] = value
        record["text"] = f"{name} hardware_exit_reason={value:#x}: KVM has no handler for it"
    else:
        record["text"] = f"{name}: not expected from this guest"
    return record


def explain_entry_failure(value: int) -> str:
    """Read fail_entry.hardware_entry_failure_reason as v3.8's vmx_handle_exit fills it."""
    if value & uapi.VMX_EXIT_REASONS_FAILED_VMENTRY:
        basic = value & 0xFFFF
        text = uapi.VMX_ENTRY_FAILURES.get(basic, f"VMX basic exit reason {basic}")
        return f"VM entry failed, exit reason {basic}: {text}"
    text = uapi.VM_INSTRUCTION_ERRORS.get(value)
    if text:
        return f"VMLAUNCH/VMRESUME failed, VM-instruction error {value}: {text}"
    return (
        f"{value:#x}: on VMX a VM-instruction error or exit reason, on SVM the VMCB exit code; check the host's dmesg"
    )
