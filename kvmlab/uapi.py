"""The slice of the KVM user-space ABI (include/uapi/linux/kvm.h) the lab needs.

Everything is spelled out by hand rather than parsed from a header, so the lab
runs on a machine without linux-libc-dev; tests/test_kvmlab.py checks every
number and layout here against the real header when a C compiler is present.
The ABI is stable: the values below are the same in v3.8 and in today's header.
"""

from __future__ import annotations

import ctypes

# --- ioctl number encoding (include/uapi/asm-generic/ioctl.h) ---------------
# An ioctl number packs direction (2 bits), argument size (14 bits), a type
# byte and a command number.  x86 uses the generic layout.
IOC_NRBITS = 8
IOC_TYPEBITS = 8
IOC_SIZEBITS = 14
IOC_NRSHIFT = 0
IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS
IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS
IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS
IOC_NONE = 0
IOC_WRITE = 1
IOC_READ = 2


def _ioc(direction: int, type_: int, nr: int, size: int) -> int:
    """Pack an ioctl number exactly as the kernel's _IOC() macro does."""
    if not 0 <= size < (1 << IOC_SIZEBITS):
        raise ValueError(f"ioctl argument size {size} does not fit in {IOC_SIZEBITS} bits")
    return (direction << IOC_DIRSHIFT) | (size << IOC_SIZESHIFT) | (type_ << IOC_TYPESHIFT) | (nr << IOC_NRSHIFT)


def io(type_: int, nr: int) -> int:
    """_IO(type, nr): no argument is copied; the argument, if any, is a plain integer."""
    return _ioc(IOC_NONE, type_, nr, 0)


def ior(type_: int, nr: int, size: int) -> int:
    """_IOR(type, nr, T): the kernel writes sizeof(T) bytes back to user space."""
    return _ioc(IOC_READ, type_, nr, size)


def iow(type_: int, nr: int, size: int) -> int:
    """_IOW(type, nr, T): user space hands sizeof(T) bytes to the kernel."""
    return _ioc(IOC_WRITE, type_, nr, size)


def iowr(type_: int, nr: int, size: int) -> int:
    """_IOWR(type, nr, T): both directions."""
    return _ioc(IOC_READ | IOC_WRITE, type_, nr, size)


# --- structures ------------------------------------------------------------
# ctypes gives the natural x86-64 alignment, which is what the kernel uses.


class KvmUserspaceMemoryRegion(ctypes.Structure):
    """struct kvm_userspace_memory_region: one guest-physical range backed by our mmap."""

    _fields_ = [
        ("slot", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("guest_phys_addr", ctypes.c_uint64),
        ("memory_size", ctypes.c_uint64),
        ("userspace_addr", ctypes.c_uint64),
    ]


class KvmRegs(ctypes.Structure):
    """struct kvm_regs (arch/x86/include/uapi/asm/kvm.h): the general registers."""

    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "rax",
            "rbx",
            "rcx",
            "rdx",
            "rsi",
            "rdi",
            "rsp",
            "rbp",
            "r8",
            "r9",
            "r10",
            "r11",
            "r12",
            "r13",
            "r14",
            "r15",
            "rip",
            "rflags",
        )
    ]


class KvmSegment(ctypes.Structure):
    """struct kvm_segment: a segment register with its hidden descriptor cache."""

    _fields_ = [
        ("base", ctypes.c_uint64),
        ("limit", ctypes.c_uint32),
        ("selector", ctypes.c_uint16),
        ("type", ctypes.c_uint8),
        ("present", ctypes.c_uint8),
        ("dpl", ctypes.c_uint8),
        ("db", ctypes.c_uint8),
        ("s", ctypes.c_uint8),
        ("l", ctypes.c_uint8),
        ("g", ctypes.c_uint8),
        ("avl", ctypes.c_uint8),
        ("unusable", ctypes.c_uint8),
        ("padding", ctypes.c_uint8),
    ]


class KvmDtable(ctypes.Structure):
    """struct kvm_dtable: GDTR/IDTR."""

    _fields_ = [
        ("base", ctypes.c_uint64),
        ("limit", ctypes.c_uint16),
        ("padding", ctypes.c_uint16 * 3),
    ]


KVM_NR_INTERRUPTS = 256


class KvmSregs(ctypes.Structure):
    """struct kvm_sregs: segments, descriptor tables and control registers."""

    _fields_ = [
        ("cs", KvmSegment),
        ("ds", KvmSegment),
        ("es", KvmSegment),
        ("fs", KvmSegment),
        ("gs", KvmSegment),
        ("ss", KvmSegment),
        ("tr", KvmSegment),
        ("ldt", KvmSegment),
        ("gdt", KvmDtable),
        ("idt", KvmDtable),
        ("cr0", ctypes.c_uint64),
        ("cr2", ctypes.c_uint64),
        ("cr3", ctypes.c_uint64),
        ("cr4", ctypes.c_uint64),
        ("cr8", ctypes.c_uint64),
        ("efer", ctypes.c_uint64),
        ("apic_base", ctypes.c_uint64),
        ("interrupt_bitmap", ctypes.c_uint64 * ((KVM_NR_INTERRUPTS + 63) // 64)),
    ]


class KvmRunIo(ctypes.Structure):
    """kvm_run.io (KVM_EXIT_IO): the data itself sits at data_offset inside the mapping."""

    _fields_ = [
        ("direction", ctypes.c_uint8),
        ("size", ctypes.c_uint8),
        ("port", ctypes.c_uint16),
        ("count", ctypes.c_uint32),
        ("data_offset", ctypes.c_uint64),
    ]


class KvmRunFailEntry(ctypes.Structure):
    """kvm_run.fail_entry (KVM_EXIT_FAIL_ENTRY): the VMX exit reason or VM-instruction error."""

    _fields_ = [("hardware_entry_failure_reason", ctypes.c_uint64)]


class KvmRunHw(ctypes.Structure):
    """kvm_run.hw (KVM_EXIT_UNKNOWN): the raw hardware exit reason."""

    _fields_ = [("hardware_exit_reason", ctypes.c_uint64)]


class KvmRunInternal(ctypes.Structure):
    """kvm_run.internal (KVM_EXIT_INTERNAL_ERROR): suberror plus ndata words of detail."""

    _fields_ = [
        ("suberror", ctypes.c_uint32),
        ("ndata", ctypes.c_uint32),
        ("data", ctypes.c_uint64 * 16),
    ]


class KvmRunMmio(ctypes.Structure):
    """kvm_run.mmio (KVM_EXIT_MMIO): a guest access to unbacked guest-physical memory."""

    _fields_ = [
        ("phys_addr", ctypes.c_uint64),
        ("data", ctypes.c_uint8 * 8),
        ("len", ctypes.c_uint32),
        ("is_write", ctypes.c_uint8),
    ]


class KvmRunExit(ctypes.Union):
    """The exit-specific union; 256 bytes of padding fix its size in the ABI."""

    _fields_ = [
        ("hw", KvmRunHw),
        ("fail_entry", KvmRunFailEntry),
        ("io", KvmRunIo),
        ("mmio", KvmRunMmio),
        ("internal", KvmRunInternal),
        ("padding", ctypes.c_char * 256),
    ]


class KvmRun(ctypes.Structure):
    """struct kvm_run: page 0 of the vcpu mapping, shared with the kernel.

    v3.8 names bytes 1..7 and 14..15 padding; later kernels carved
    immediate_exit and flags out of them, without moving any field.
    """

    _fields_ = [
        ("request_interrupt_window", ctypes.c_uint8),
        ("padding1", ctypes.c_uint8 * 7),
        ("exit_reason", ctypes.c_uint32),
        ("ready_for_interrupt_injection", ctypes.c_uint8),
        ("if_flag", ctypes.c_uint8),
        ("padding2", ctypes.c_uint8 * 2),
        ("cr8", ctypes.c_uint64),
        ("apic_base", ctypes.c_uint64),
        ("u", KvmRunExit),
        ("kvm_valid_regs", ctypes.c_uint64),
        ("kvm_dirty_regs", ctypes.c_uint64),
        ("s", ctypes.c_char * 2048),
    ]


def run_offset(path: str) -> int:
    """Offset inside struct kvm_run of a field path such as 'io.data_offset'."""
    if "." not in path:
        return getattr(KvmRun, path).offset
    member, field = path.split(".", 1)
    sub = dict(KvmRunExit._fields_)[member]
    return KvmRun.u.offset + getattr(KvmRunExit, member).offset + getattr(sub, field).offset


# --- ioctl numbers (include/uapi/linux/kvm.h) ------------------------------
KVMIO = 0xAE

# ioctls on the /dev/kvm fd
KVM_GET_API_VERSION = io(KVMIO, 0x00)
KVM_CREATE_VM = io(KVMIO, 0x01)
KVM_CHECK_EXTENSION = io(KVMIO, 0x03)
KVM_GET_VCPU_MMAP_SIZE = io(KVMIO, 0x04)
# ioctls on a VM fd
KVM_CREATE_VCPU = io(KVMIO, 0x41)
KVM_SET_USER_MEMORY_REGION = iow(KVMIO, 0x46, ctypes.sizeof(KvmUserspaceMemoryRegion))
KVM_SET_TSS_ADDR = io(KVMIO, 0x47)
# ioctls on a vcpu fd
KVM_RUN = io(KVMIO, 0x80)
KVM_GET_REGS = ior(KVMIO, 0x81, ctypes.sizeof(KvmRegs))
KVM_SET_REGS = iow(KVMIO, 0x82, ctypes.sizeof(KvmRegs))
KVM_GET_SREGS = ior(KVMIO, 0x83, ctypes.sizeof(KvmSregs))
KVM_SET_SREGS = iow(KVMIO, 0x84, ctypes.sizeof(KvmSregs))

IOCTL_NAMES: dict[str, int] = {
    "KVM_GET_API_VERSION": KVM_GET_API_VERSION,
    "KVM_CREATE_VM": KVM_CREATE_VM,
    "KVM_CHECK_EXTENSION": KVM_CHECK_EXTENSION,
    "KVM_GET_VCPU_MMAP_SIZE": KVM_GET_VCPU_MMAP_SIZE,
    "KVM_CREATE_VCPU": KVM_CREATE_VCPU,
    "KVM_SET_USER_MEMORY_REGION": KVM_SET_USER_MEMORY_REGION,
    "KVM_SET_TSS_ADDR": KVM_SET_TSS_ADDR,
    "KVM_RUN": KVM_RUN,
    "KVM_GET_REGS": KVM_GET_REGS,
    "KVM_SET_REGS": KVM_SET_REGS,
    "KVM_GET_SREGS": KVM_GET_SREGS,
    "KVM_SET_SREGS": KVM_SET_SREGS,
}

KVM_API_VERSION = 12  # has not changed since 2.6.22; the kernel refuses nothing else

# --- capabilities ----------------------------------------------------------
# Only capabilities that v3.8 already knew, so the lab's answers can be read
# against that kernel's kvm_dev_ioctl_check_extension().
CAPABILITIES: dict[str, int] = {
    "KVM_CAP_IRQCHIP": 0,
    "KVM_CAP_HLT": 1,
    "KVM_CAP_USER_MEMORY": 3,
    "KVM_CAP_SET_TSS_ADDR": 4,
    "KVM_CAP_EXT_CPUID": 7,
    "KVM_CAP_NR_VCPUS": 9,
    "KVM_CAP_NR_MEMSLOTS": 10,
    "KVM_CAP_COALESCED_MMIO": 15,
    "KVM_CAP_SYNC_MMU": 16,
    "KVM_CAP_MAX_VCPUS": 66,
}

# What a non-zero answer means, for the few where the number itself matters.
CAPABILITY_MEANING: dict[str, str] = {
    "KVM_CAP_NR_VCPUS": "recommended maximum number of vcpus",
    "KVM_CAP_MAX_VCPUS": "hard maximum number of vcpus",
    "KVM_CAP_NR_MEMSLOTS": "number of memory slots",
    "KVM_CAP_COALESCED_MMIO": "page offset of the coalesced MMIO ring",
}

# --- exit reasons ----------------------------------------------------------
EXIT_NAMES: dict[int, str] = {
    0: "KVM_EXIT_UNKNOWN",
    1: "KVM_EXIT_EXCEPTION",
    2: "KVM_EXIT_IO",
    3: "KVM_EXIT_HYPERCALL",
    4: "KVM_EXIT_DEBUG",
    5: "KVM_EXIT_HLT",
    6: "KVM_EXIT_MMIO",
    7: "KVM_EXIT_IRQ_WINDOW_OPEN",
    8: "KVM_EXIT_SHUTDOWN",
    9: "KVM_EXIT_FAIL_ENTRY",
    10: "KVM_EXIT_INTR",
    11: "KVM_EXIT_SET_TPR",
    12: "KVM_EXIT_TPR_ACCESS",
    13: "KVM_EXIT_S390_SIEIC",
    14: "KVM_EXIT_S390_RESET",
    15: "KVM_EXIT_DCR",
    16: "KVM_EXIT_NMI",
    17: "KVM_EXIT_INTERNAL_ERROR",
    18: "KVM_EXIT_OSI",
    19: "KVM_EXIT_PAPR_HCALL",
    20: "KVM_EXIT_S390_UCONTROL",
    21: "KVM_EXIT_WATCHDOG",
    22: "KVM_EXIT_S390_TSCH",
    23: "KVM_EXIT_EPR",
    24: "KVM_EXIT_SYSTEM_EVENT",
    25: "KVM_EXIT_S390_STSI",
    26: "KVM_EXIT_IOAPIC_EOI",
    27: "KVM_EXIT_HYPERV",
    28: "KVM_EXIT_ARM_NISV",
    29: "KVM_EXIT_X86_RDMSR",
    30: "KVM_EXIT_X86_WRMSR",
    31: "KVM_EXIT_DIRTY_RING_FULL",
    32: "KVM_EXIT_AP_RESET_HOLD",
    33: "KVM_EXIT_X86_BUS_LOCK",
    34: "KVM_EXIT_XEN",
    35: "KVM_EXIT_RISCV_SBI",
    36: "KVM_EXIT_RISCV_CSR",
    37: "KVM_EXIT_NOTIFY",
}
EXIT_BY_NAME: dict[str, int] = {name: value for value, name in EXIT_NAMES.items()}
KVM_EXIT_UNKNOWN = EXIT_BY_NAME["KVM_EXIT_UNKNOWN"]
KVM_EXIT_IO = EXIT_BY_NAME["KVM_EXIT_IO"]
KVM_EXIT_HLT = EXIT_BY_NAME["KVM_EXIT_HLT"]
KVM_EXIT_MMIO = EXIT_BY_NAME["KVM_EXIT_MMIO"]
KVM_EXIT_SHUTDOWN = EXIT_BY_NAME["KVM_EXIT_SHUTDOWN"]
KVM_EXIT_FAIL_ENTRY = EXIT_BY_NAME["KVM_EXIT_FAIL_ENTRY"]
KVM_EXIT_INTR = EXIT_BY_NAME["KVM_EXIT_INTR"]
KVM_EXIT_INTERNAL_ERROR = EXIT_BY_NAME["KVM_EXIT_INTERNAL_ERROR"]

KVM_EXIT_IO_IN = 0
KVM_EXIT_IO_OUT = 1

# kvm_run.internal.suberror, with what each means on x86.
INTERNAL_ERROR_NAMES: dict[int, str] = {
    1: "KVM_INTERNAL_ERROR_EMULATION",
    2: "KVM_INTERNAL_ERROR_SIMUL_EX",
    3: "KVM_INTERNAL_ERROR_DELIVERY_EV",
    4: "KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON",
}
INTERNAL_ERROR_MEANING: dict[int, str] = {
    1: (
        "the in-kernel instruction emulator could not emulate a guest instruction; "
        "on VMX without unrestricted guest this is how real-mode code the host "
        "cannot run natively usually ends"
    ),
    2: "an exception was raised while another one was being delivered (simultaneous exceptions)",
    3: "a VM exit happened while an event was being delivered through the IDT, and KVM could not handle it",
    4: "the hardware reported an exit reason KVM has no handler for (added after v3.8)",
}

# x86 layout of the vcpu mapping (arch/x86/include/uapi/asm/kvm.h).
KVM_PIO_PAGE_OFFSET = 1
KVM_COALESCED_MMIO_PAGE_OFFSET = 2

# VMX basic exit reasons that mean "VM entry failed" (SDM vol. 3, appendix C);
# the kernel hands them up with bit 31 (VMX_EXIT_REASONS_FAILED_VMENTRY) set.
VMX_EXIT_REASONS_FAILED_VMENTRY = 0x80000000
VMX_ENTRY_FAILURES: dict[int, str] = {
    33: "VM-entry failure due to invalid guest state",
    34: "VM-entry failure due to MSR loading",
    41: "VM-entry failure due to machine-check event",
}
# VM-instruction error numbers (SDM vol. 3, 30.4), used when VMLAUNCH/VMRESUME
# itself failed (VMfailValid) rather than the entry.
VM_INSTRUCTION_ERRORS: dict[int, str] = {
    7: "VM entry with invalid control field(s)",
    8: "VM entry with invalid host-state field(s)",
    13: "VM entry with events blocked by MOV SS",
}
