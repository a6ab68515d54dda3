"""Tests for kvmlab: the ABI it hand-codes, its error reports, and a live run.

The ABI tests matter most: a wrong ioctl number or struct offset would make
the lab read garbage from the kvm_run page while looking plausible.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import grp
import json
import mmap
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from kvmlab import lab, report, uapi
from kvmlab.__main__ import main

REPO = Path(__file__).resolve().parent.parent
HEADER = Path("/usr/include/linux/kvm.h")

# --- ioctl numbers -----------------------------------------------------------
# Expected values as include/uapi/linux/kvm.h defines them, worked out by hand:
# _IOC(dir, type, nr, size) = dir << 30 | size << 16 | type << 8 | nr,
# with _IOC_WRITE = 1, _IOC_READ = 2, KVMIO = 0xAE.
EXPECTED_IOCTLS = {
    # _IO(KVMIO, 0x00)
    "KVM_GET_API_VERSION": 0xAE00,
    # _IO(KVMIO, 0x01)
    "KVM_CREATE_VM": 0xAE01,
    # _IO(KVMIO, 0x03)
    "KVM_CHECK_EXTENSION": 0xAE03,
    # _IO(KVMIO, 0x04)
    "KVM_GET_VCPU_MMAP_SIZE": 0xAE04,
    # _IO(KVMIO, 0x41)
    "KVM_CREATE_VCPU": 0xAE41,
    # _IOW(KVMIO, 0x46, struct kvm_userspace_memory_region): 1 << 30 | 32 << 16
    "KVM_SET_USER_MEMORY_REGION": 0x4020AE46,
    # _IO(KVMIO, 0x47)
    "KVM_SET_TSS_ADDR": 0xAE47,
    # _IO(KVMIO, 0x80)
    "KVM_RUN": 0xAE80,
    # _IOR(KVMIO, 0x81, struct kvm_regs): 2 << 30 | 144 << 16
    "KVM_GET_REGS": 0x8090AE81,
    # _IOW(KVMIO, 0x82, struct kvm_regs): 1 << 30 | 144 << 16
    "KVM_SET_REGS": 0x4090AE82,
    # _IOR(KVMIO, 0x83, struct kvm_sregs): 2 << 30 | 312 << 16
    "KVM_GET_SREGS": 0x8138AE83,
    # _IOW(KVMIO, 0x84, struct kvm_sregs): 1 << 30 | 312 << 16
    "KVM_SET_SREGS": 0x4138AE84,
}

# Sizes and offsets on x86-64, from the same headers (arch/x86/include/uapi/asm/kvm.h
# for the register structs).
EXPECTED_SIZES = {
    "kvm_regs": 144,  # 18 x __u64
    "kvm_segment": 24,  # base 8, limit 4, selector 2, ten __u8
    "kvm_dtable": 16,  # base 8, limit 2, padding[3] 6
    "kvm_sregs": 312,  # 8 segments 192, 2 dtables 32, 7 x __u64 56, bitmap 32
    "kvm_userspace_memory_region": 32,
    "kvm_run": 2352,  # 32 header + 256 union + 2 x 8 + 2048 sync regs
}
EXPECTED_RUN_OFFSETS = {
    "request_interrupt_window": 0,
    "exit_reason": 8,
    "ready_for_interrupt_injection": 12,
    "if_flag": 13,
    "cr8": 16,
    "apic_base": 24,
    "hw.hardware_exit_reason": 32,
    "fail_entry.hardware_entry_failure_reason": 32,
    "io.direction": 32,
    "io.size": 33,
    "io.port": 34,
    "io.count": 36,
    "io.data_offset": 40,
    "mmio.phys_addr": 32,
    "mmio.data": 40,
    "mmio.len": 48,
    "mmio.is_write": 52,
    "internal.suberror": 32,
    "internal.ndata": 36,
    "internal.data": 40,
    "kvm_valid_regs": 288,
    "kvm_dirty_regs": 296,
    "s": 304,
}
EXPECTED_OFFSETS = {
    ("KvmRegs", "rip"): 128,
    ("KvmRegs", "rflags"): 136,
    ("KvmSegment", "base"): 0,
    ("KvmSegment", "limit"): 8,
    ("KvmSegment", "selector"): 12,
    ("KvmSegment", "type"): 14,
    ("KvmSegment", "unusable"): 22,
    ("KvmDtable", "limit"): 8,
    ("KvmSregs", "cs"): 0,
    ("KvmSregs", "ldt"): 168,
    ("KvmSregs", "gdt"): 192,
    ("KvmSregs", "idt"): 208,
    ("KvmSregs", "cr0"): 224,
    ("KvmSregs", "efer"): 264,
    ("KvmSregs", "apic_base"): 272,
    ("KvmSregs", "interrupt_bitmap"): 280,
    ("KvmUserspaceMemoryRegion", "slot"): 0,
    ("KvmUserspaceMemoryRegion", "flags"): 4,
    ("KvmUserspaceMemoryRegion", "guest_phys_addr"): 8,
    ("KvmUserspaceMemoryRegion", "memory_size"): 16,
    ("KvmUserspaceMemoryRegion", "userspace_addr"): 24,
}
STRUCT_CLASSES = {
    "kvm_regs": uapi.KvmRegs,
    "kvm_segment": uapi.KvmSegment,
    "kvm_dtable": uapi.KvmDtable,
    "kvm_sregs": uapi.KvmSregs,
    "kvm_userspace_memory_region": uapi.KvmUserspaceMemoryRegion,
    "kvm_run": uapi.KvmRun,
}
C_NAMES = {
    "KvmRegs": "kvm_regs",
    "KvmSegment": "kvm_segment",
    "KvmDtable": "kvm_dtable",
    "KvmSregs": "kvm_sregs",
    "KvmUserspaceMemoryRegion": "kvm_userspace_memory_region",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_IOCTLS))
def test_ioctl_numbers_match_uapi_header(name: str) -> None:
    assert getattr(uapi, name) == EXPECTED_IOCTLS[name], f"{name} = {getattr(uapi, name):#x}"
    assert uapi.IOCTL_NAMES[name] == EXPECTED_IOCTLS[name]


def test_ioctl_name_table_is_complete() -> None:
    assert set(uapi.IOCTL_NAMES) == set(EXPECTED_IOCTLS)


def test_ioc_fields_decode_back() -> None:
    """Direction, size, type and nr come back out of the packed number where _IOC put them."""
    number = uapi.KVM_SET_SREGS
    assert number >> 30 == uapi.IOC_WRITE
    assert (number >> 16) & 0x3FFF == ctypes.sizeof(uapi.KvmSregs)
    assert (number >> 8) & 0xFF == uapi.KVMIO
    assert number & 0xFF == 0x84
    assert uapi.ior(0xAE, 0x81, 144) >> 30 == uapi.IOC_READ
    assert uapi.iowr(0xAE, 0x01, 8) == 0xC008AE01
    with pytest.raises(ValueError):
        uapi.iow(0xAE, 0, 1 << 14)


@pytest.mark.parametrize("name", sorted(EXPECTED_SIZES))
def test_struct_sizes(name: str) -> None:
    assert ctypes.sizeof(STRUCT_CLASSES[name]) == EXPECTED_SIZES[name]


@pytest.mark.parametrize("field", sorted(EXPECTED_RUN_OFFSETS))
def test_kvm_run_offsets(field: str) -> None:
    assert uapi.run_offset(field) == EXPECTED_RUN_OFFSETS[field]


@pytest.mark.parametrize(("cls", "field"), sorted(EXPECTED_OFFSETS))
def test_struct_offsets(cls: str, field: str) -> None:
    assert getattr(getattr(uapi, cls), field).offset == EXPECTED_OFFSETS[(cls, field)]


# --- the header as oracle ------------------------------------------------------


def _c_oracle_source() -> str:
    """A C program printing 'name value' for everything the lab hard-codes."""
    lines = [
        "#include <stdio.h>",
        "#include <stddef.h>",
        "#include <linux/kvm.h>",
        '#define V(n, x) printf("%s %llu\\n", n, (unsigned long long)(x))',
        "int main(void) {",
    ]
    for name in uapi.IOCTL_NAMES:
        lines.append(f'V("{name}", {name});')
    for name in uapi.CAPABILITIES:
        lines.append(f'V("{name}", {name});')
    for name in uapi.EXIT_NAMES.values():
        lines.append(f"#ifdef {name}")
        lines.append(f'V("{name}", {name});')
        lines.append("#endif")
    for name in uapi.INTERNAL_ERROR_NAMES.values():
        lines.append(f"#ifdef {name}")
        lines.append(f'V("{name}", {name});')
        lines.append("#endif")
    for name in (
        "KVM_EXIT_IO_IN",
        "KVM_EXIT_IO_OUT",
        "KVM_PIO_PAGE_OFFSET",
        "KVM_COALESCED_MMIO_PAGE_OFFSET",
        "KVM_API_VERSION",
        "KVM_NR_INTERRUPTS",
    ):
        lines.append(f'V("{name}", {name});')
    for name in EXPECTED_SIZES:
        lines.append(f'V("sizeof {name}", sizeof(struct {name}));')
    for field in EXPECTED_RUN_OFFSETS:
        lines.append(f'V("kvm_run.{field}", offsetof(struct kvm_run, {field}));')
    for cls, field in EXPECTED_OFFSETS:
        c_struct = C_NAMES[cls]
        lines.append(f'V("{c_struct}.{field}", offsetof(struct {c_struct}, {field}));')
    lines += ["return 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Compile and run the oracle against /usr/include/linux/kvm.h (linux-libc-dev)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (gcc/cc) to read linux/kvm.h with")
    if not HEADER.exists():
        pytest.skip(f"{HEADER} missing: install linux-libc-dev")
    work = tmp_path_factory.mktemp("oracle")
    src = work / "oracle.c"
    src.write_text(_c_oracle_source())
    exe = work / "oracle"
    subprocess.run([cc, "-o", str(exe), str(src)], check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    values: dict[str, int] = {}
    for line in out.splitlines():
        name, value = line.rsplit(" ", 1)
        values[name] = int(value)
    return values


def test_ioctls_against_header(oracle: dict[str, int]) -> None:
    for name, value in uapi.IOCTL_NAMES.items():
        assert oracle[name] == value, name


def test_constants_against_header(oracle: dict[str, int]) -> None:
    for name, value in uapi.CAPABILITIES.items():
        assert oracle[name] == value, name
    for value, name in uapi.EXIT_NAMES.items():
        if name in oracle:  # an older header lacks the newest names
            assert oracle[name] == value, name
    for value, name in uapi.INTERNAL_ERROR_NAMES.items():
        if name in oracle:
            assert oracle[name] == value, name
    assert oracle["KVM_EXIT_IO_IN"] == uapi.KVM_EXIT_IO_IN
    assert oracle["KVM_EXIT_IO_OUT"] == uapi.KVM_EXIT_IO_OUT
    assert oracle["KVM_PIO_PAGE_OFFSET"] == uapi.KVM_PIO_PAGE_OFFSET
    assert oracle["KVM_COALESCED_MMIO_PAGE_OFFSET"] == uapi.KVM_COALESCED_MMIO_PAGE_OFFSET
    assert oracle["KVM_API_VERSION"] == uapi.KVM_API_VERSION
    assert oracle["KVM_NR_INTERRUPTS"] == uapi.KVM_NR_INTERRUPTS


def test_layouts_against_header(oracle: dict[str, int]) -> None:
    for name, cls in STRUCT_CLASSES.items():
        assert oracle[f"sizeof {name}"] == ctypes.sizeof(cls), name
    for field in EXPECTED_RUN_OFFSETS:
        assert oracle[f"kvm_run.{field}"] == uapi.run_offset(field), field
    for cls, field in EXPECTED_OFFSETS:
        c_struct = C_NAMES[cls]
        assert oracle[f"{c_struct}.{field}"] == getattr(getattr(uapi, cls), field).offset


# --- pieces of the walk ----------------------------------------------------------


def test_guest_code_is_the_documented_program() -> None:
    code = lab.guest_code(b"KV", 0x3F8)
    assert code == bytes.fromhex("baf803b04beeb056eef4")
    assert lab.guest_code().endswith(b"\xf4")


# Site sections the lab links to: those of steps 1-4 (shown on every host) and those of the run.
SETUP_SECTIONS = (
    "init.html#dev-kvm",
    "vm.html#create-vm",
    "vm.html#vm-fd",
    "vm.html#memory-slots",
    "vcpu.html#create-vcpu",
    "vcpu.html#vcpu-fd",
    "vcpu.html#kvm-run-page",
)
RUN_SECTIONS = ("run.html#kvm-run", "run.html#exit-handlers", "run.html#back-to-user-space")


def test_site_links() -> None:
    assert lab.site_link("site/", "vm.html#create-vm") == "site/vm.html#create-vm"
    assert lab.site_link("https://example.org/kvm", "run.html#kvm-run") == ("https://example.org/kvm/run.html#kvm-run")
    sections = {k.section for paths in lab.PATHS.values() for k in paths if k.section}
    assert sections == {*SETUP_SECTIONS, *RUN_SECTIONS}


def test_ioctl_error_names_ioctl_and_errno() -> None:
    err = lab.IoctlError("KVM_CREATE_VCPU", OSError(errno.EEXIST, os.strerror(errno.EEXIST)))
    assert str(err) == "KVM_CREATE_VCPU failed: EEXIST (File exists)"
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        with pytest.raises(lab.IoctlError) as info:
            lab.ioctl(fd, "KVM_GET_API_VERSION")
        assert info.value.errno == errno.ENOTTY
        assert "KVM_GET_API_VERSION failed: ENOTTY" in str(info.value)
        with pytest.raises(lab.IoctlError, match="KVM_GET_SREGS failed: ENOTTY"):
            lab.ioctl(fd, "KVM_GET_SREGS", uapi.KvmSregs())
    finally:
        os.close(fd)


def test_explain_eacces_names_group(tmp_path: Path) -> None:
    node = tmp_path / "kvm"
    node.write_text("")
    node.chmod(0o660)
    group = grp.getgrgid(node.stat().st_gid).gr_name
    err = lab.explain_open_error(str(node), OSError(errno.EACCES, os.strerror(errno.EACCES)))
    assert err.exit_code == lab.EXIT_NO_DEVICE
    assert err.errno == errno.EACCES
    text = str(err)
    assert "EACCES (Permission denied)" in text
    assert "no permission" in text
    assert f"{group}" in text
    assert "-rw-rw----" in text


def test_explain_enoent_module_not_loaded(tmp_path: Path) -> None:
    sys_module = tmp_path / "module"
    (sys_module / "ext4").mkdir(parents=True)
    proc_modules = tmp_path / "modules"
    proc_modules.write_text("ext4 1000 1 - Live 0x0\n")
    err = lab.explain_open_error(
        "/dev/kvm", OSError(errno.ENOENT, "No such file or directory"), str(sys_module), str(proc_modules)
    )
    text = str(err)
    assert "ENOENT" in text
    assert "the kvm module is not loaded" in text
    assert f"{sys_module}/kvm does not exist" in text
    assert "no kvm module" in text
    assert "modprobe" in text


def test_explain_enoent_module_loaded_but_no_node(tmp_path: Path) -> None:
    sys_module = tmp_path / "module"
    for name in ("kvm", "kvm_intel"):
        (sys_module / name).mkdir(parents=True)
    proc_modules = tmp_path / "modules"
    proc_modules.write_text("kvm_intel 1 0 - Live 0x0\nkvm 1 1 kvm_intel, Live 0x0\n")
    text = str(lab.explain_open_error("/dev/kvm", OSError(errno.ENOENT, "x"), str(sys_module), str(proc_modules)))
    assert "the kvm module is loaded (kvm, kvm_intel" in text
    assert "device node is missing" in text


def _run_bytes(**fields: Any) -> bytearray:
    """A fake vcpu mapping: kvm_run in page 0, PIO data in page 1."""
    buf = bytearray(3 * mmap.PAGESIZE)
    run = uapi.KvmRun.from_buffer(buf)
    for path, value in fields.items():
        target: Any = run
        parts = path.split("__")
        for part in parts[:-1]:
            target = getattr(target, part)
        setattr(target, parts[-1], value)
    del run
    return buf


def test_describe_exit_io_reads_data_at_data_offset() -> None:
    buf = _run_bytes(
        exit_reason=uapi.KVM_EXIT_IO,
        u__io__direction=uapi.KVM_EXIT_IO_OUT,
        u__io__size=1,
        u__io__port=0x3F8,
        u__io__count=1,
        u__io__data_offset=mmap.PAGESIZE,
    )
    buf[mmap.PAGESIZE] = ord("K")
    record = lab.describe_exit(uapi.KvmRun.from_buffer_copy(buf), bytes(buf))
    assert record["name"] == "KVM_EXIT_IO"
    assert (record["direction"], record["port"], record["size"], record["data"]) == ("out", 0x3F8, 1, "4b")
    assert "handle_io" in record["handler"]


def test_describe_exit_internal_error_explains_suberror() -> None:
    buf = _run_bytes(exit_reason=uapi.KVM_EXIT_INTERNAL_ERROR, u__internal__suberror=1, u__internal__ndata=0)
    record = lab.describe_exit(uapi.KvmRun.from_buffer_copy(buf), bytes(buf))
    assert record["suberror_name"] == "KVM_INTERNAL_ERROR_EMULATION"
    assert "emulat" in record["text"]


def test_describe_exit_fail_entry_decodes_reason() -> None:
    buf = _run_bytes(exit_reason=uapi.KVM_EXIT_FAIL_ENTRY, u__fail_entry__hardware_entry_failure_reason=0x80000021)
    record = lab.describe_exit(uapi.KvmRun.from_buffer_copy(buf), bytes(buf))
    assert record["hardware_entry_failure_reason"] == 0x80000021
    assert "invalid guest state" in record["text"]
    assert "VM-instruction error 7" in lab.explain_entry_failure(7)


def test_describe_exit_shutdown_and_hlt() -> None:
    for reason, name in ((uapi.KVM_EXIT_SHUTDOWN, "KVM_EXIT_SHUTDOWN"), (uapi.KVM_EXIT_HLT, "KVM_EXIT_HLT")):
        buf = _run_bytes(exit_reason=reason)
        assert lab.describe_exit(uapi.KvmRun.from_buffer_copy(buf), bytes(buf))["name"] == name


def test_run_loop_reports_host_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A KVM_EXIT_INTERNAL_ERROR after the setup is the host's limit: exit 0, said plainly."""
    mm = mmap.mmap(-1, 3 * mmap.PAGESIZE)
    run_map = lab.Mapping(mm)

    def fake_ioctl(fd: int, name: str, arg: Any = 0) -> int:
        assert name == "KVM_RUN"
        mm[: ctypes.sizeof(uapi.KvmRun)] = bytes(
            _run_bytes(
                exit_reason=uapi.KVM_EXIT_INTERNAL_ERROR,
                u__internal__suberror=1,
            )[: ctypes.sizeof(uapi.KvmRun)]
        )
        return 0

    monkeypatch.setattr(lab, "ioctl", fake_ioctl)
    walk = lab.Lab()
    step = lab.Step(5, "run", "run")
    try:
        walk._run_loop(-1, run_map, step)
    finally:
        run_map.close()
    assert step.status == "host-refused"
    assert walk.result.exit_code == lab.EXIT_OK
    assert "could not run the real-mode guest" in walk.result.verdict
    assert "KVM_INTERNAL_ERROR_EMULATION" in walk.result.verdict
    assert step.exits[0]["name"] == "KVM_EXIT_INTERNAL_ERROR"


def test_run_loop_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    mm = mmap.mmap(-1, 3 * mmap.PAGESIZE)
    run_map = lab.Mapping(mm)
    calls: list[str] = []

    def fake_ioctl(fd: int, name: str, arg: Any = 0) -> int:
        calls.append(name)
        mm[: ctypes.sizeof(uapi.KvmRun)] = bytes(
            _run_bytes(exit_reason=uapi.KVM_EXIT_MMIO)[: ctypes.sizeof(uapi.KvmRun)]
        )
        return 0

    monkeypatch.setattr(lab, "ioctl", fake_ioctl)
    walk = lab.Lab(max_exits=5)
    step = lab.Step(5, "run", "run")
    try:
        walk._run_loop(-1, run_map, step)
    finally:
        run_map.close()
    assert calls == ["KVM_RUN"] * 5
    assert step.status == "host-refused"
    assert "no KVM_EXIT_HLT within 5 exits" in walk.result.verdict


# --- the command line without a usable device -------------------------------------


def _lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvmlab", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_missing_device_explains_and_fails(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-kvm"
    proc = _lab("--device", str(missing))
    assert proc.returncode == lab.EXIT_NO_DEVICE
    assert "Traceback" not in proc.stderr
    assert f"cannot open {missing}: ENOENT (No such file or directory)" in proc.stderr
    assert "module" in proc.stderr
    proc = _lab("--device", str(missing), "--json")
    assert proc.returncode == lab.EXIT_NO_DEVICE
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    assert data["exit_code"] == lab.EXIT_NO_DEVICE
    assert data["steps"][0]["status"] == "failed"
    assert "ENOENT" in data["error"]
    assert len(data["steps"]) == 1  # nothing was opened, so nothing to close


def test_mode_000_file_as_root_is_not_kvm(tmp_path: Path) -> None:
    """Root opens a 000 file anyway; the first KVM ioctl then says it is not the device."""
    node = tmp_path / "kvm"
    node.write_text("")
    node.chmod(0)
    proc = _lab("--device", str(node), "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    if os.geteuid() == 0:
        assert "KVM_GET_API_VERSION failed: ENOTTY" in data["error"]
        assert data["steps"][-1]["key"] == "close"  # the fd was closed again
    else:
        assert "EACCES" in data["error"]


def test_eacces_as_unprivileged_user(tmp_path: Path) -> None:
    """Drop to nobody in a forked child so the kernel really answers EACCES."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this machine")
    folder = Path(tempfile.mkdtemp(prefix="kvmlab-"))
    try:
        folder.chmod(0o755)
        node = folder / "kvm"
        node.write_text("")
        node.chmod(0o660)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                os.close(read_end)
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                result = lab.Lab(device=str(node)).run()
                os.write(write_end, json.dumps(result.as_dict("site/")).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        data = json.loads(payload)
    finally:
        shutil.rmtree(folder)
    assert data["exit_code"] == lab.EXIT_NO_DEVICE
    assert "EACCES (Permission denied)" in data["error"]
    assert "no permission" in data["error"]
    assert "-rw-rw----" in data["error"]


def test_bad_max_exits_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--max-exits", "0"])
    assert info.value.code == 2


# --- against the real /dev/kvm ----------------------------------------------------


def _kvm_unusable() -> str | None:
    """Why /dev/kvm cannot be used here, or None if it can."""
    path = lab.DEFAULT_DEVICE
    if not os.path.exists(path):
        return f"{path} does not exist on this machine"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as err:
        return f"cannot open {path}: {lab.errno_text(err.errno)}"
    try:
        version = fcntl.ioctl(fd, uapi.KVM_GET_API_VERSION)
    except OSError as err:
        return f"KVM_GET_API_VERSION on {path} failed: {lab.errno_text(err.errno)}"
    finally:
        os.close(fd)
    if version != uapi.KVM_API_VERSION:
        return f"{path} speaks KVM API {version}, not {uapi.KVM_API_VERSION}"
    return None


@pytest.fixture
def kvm_usable() -> None:
    reason = _kvm_unusable()
    if reason:
        pytest.skip(reason)


def _check_steps_1_to_4(data: dict[str, Any], base: str) -> None:
    steps = {s["step"]: s for s in data["steps"]}
    assert [steps[n]["status"] for n in (1, 2, 3, 4)] == ["ok"] * 4
    one = steps[1]["facts"]
    assert one["api_version"] == 12
    assert one["vcpu_mmap_size"] >= 2 * mmap.PAGESIZE
    assert one["capabilities"]["KVM_CAP_USER_MEMORY"] == 1
    assert steps[2]["facts"]["fd_link"] == "anon_inode:kvm-vm"
    assert steps[3]["facts"]["memory_size"] == lab.GUEST_MEM_SIZE
    four = steps[4]["facts"]
    assert four["fd_link"].startswith("anon_inode:kvm-vcpu")
    assert four["exit_reason_before_run"] == 0
    links = {k["link"] for s in data["steps"] for k in s["kernel"] if k["link"]}
    for section in SETUP_SECTIONS:
        assert f"{base}{section}" in links
    close = steps[6]
    assert close["key"] == "close"
    assert len(close["facts"]["closed"]) == 5  # 3 fds, 2 mappings


def test_lab_runs_against_dev_kvm(kvm_usable: None) -> None:
    proc = _lab("--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    _check_steps_1_to_4(data, "site/")
    run = data["steps"][4]
    assert run["step"] == 5
    if data["guest_ran"]:
        assert run["status"] == "ok"
        names = [e["name"] for e in run["exits"]]
        assert names == ["KVM_EXIT_IO"] * len(lab.GUEST_TEXT) + ["KVM_EXIT_HLT"]
        assert all(e["port"] == lab.GUEST_PORT for e in run["exits"][:-1])
        assert all(e["data_offset"] == uapi.KVM_PIO_PAGE_OFFSET * mmap.PAGESIZE for e in run["exits"][:-1])
        assert run["facts"]["output"] == lab.GUEST_TEXT.decode()
        assert run["facts"]["rip_after_hlt"] == lab.GUEST_LOAD + len(lab.guest_code())
        assert "the guest ran" in data["verdict"]
    else:
        # The host refused the real-mode guest: steps 1-4 still stand, and it says so.
        assert run["status"] == "host-refused"
        assert "could not run the real-mode guest" in data["verdict"]
        assert "not a mistake on your side" in data["verdict"]
    run_links = {k["link"] for k in run["kernel"]}
    assert {"site/run.html#kvm-run", "site/run.html#exit-handlers", "site/run.html#back-to-user-space"} <= run_links


def test_lab_text_output_and_site_url(kvm_usable: None) -> None:
    proc = _lab("--site-url", "https://example.org/kvm/")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in (
        "KVM_GET_API_VERSION = 12",
        "anon_inode:kvm-vm",
        "anon_inode:kvm-vcpu",
        "https://example.org/kvm/vm.html#create-vm",
        "https://example.org/kvm/run.html#kvm-run",
        "[6] Close",
    ):
        assert needle in out
    assert out.rstrip().splitlines()[-1].startswith("Result: ")


def test_lab_refusal_of_kvm_run_still_exits_zero(kvm_usable: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a host whose KVM_RUN fails: steps 1-4 stand, the step says why, exit 0."""
    real_ioctl = lab.ioctl

    def refusing_ioctl(fd: int, name: str, arg: Any = 0) -> int:
        if name == "KVM_RUN":
            raise lab.IoctlError(name, OSError(errno.EINVAL, os.strerror(errno.EINVAL)))
        return real_ioctl(fd, name, arg)

    monkeypatch.setattr(lab, "ioctl", refusing_ioctl)
    before = set(os.listdir("/proc/self/fd"))
    result = lab.Lab().run()
    after = set(os.listdir("/proc/self/fd"))
    data = result.as_dict("site/")
    _check_steps_1_to_4(data, "site/")
    assert result.exit_code == 0
    assert data["steps"][4]["status"] == "host-refused"
    assert "KVM_RUN failed: EINVAL (Invalid argument)" in result.verdict
    assert after <= before, "the lab left file descriptors open"
    text = report.to_text(result, "site/")
    assert "host refused" in text and "Result: this host could not run" in text


def test_main_returns_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--device", str(tmp_path / "none")]) == lab.EXIT_NO_DEVICE
    captured = capsys.readouterr()
    assert "Error: cannot open" in captured.err
