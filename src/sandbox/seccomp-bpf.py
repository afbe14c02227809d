"""Compiles forgelink's sandbox seccomp policy to a classic BPF program with libseccomp.

Run by src/sandbox/seccomp.ts with Debian's /usr/bin/python3 and python3-seccomp (libseccomp's own
binding). Reads the policy as JSON on stdin:
  {"rules": [{"syscall": "mount", "errno": 1, "args": [{"index": 0, "op": "masked_eq", "mask": 1, "value": 1}]}]}
Every rule returns its errno; everything else is allowed. Writes the BPF program (what bwrap's --seccomp
reads) to stdout and the names this libseccomp does not know on this architecture to stderr, one per line
as "unknown <name>": a syscall the library cannot name is one this kernel's ABI does not have under that
name (iopl on arm64) or one newer than the library.
"""

import json
import sys

import seccomp

OPS = {"eq": seccomp.EQ, "ne": seccomp.NE, "gt": seccomp.GT, "masked_eq": seccomp.MASKED_EQ}


def main():
    policy = json.load(sys.stdin)
    # Only the native ABI: a syscall made through another one (int 0x80 on x86_64) kills the process,
    # libseccomp's default for a foreign architecture.
    syscall_filter = seccomp.SyscallFilter(seccomp.ALLOW)
    unknown = []
    for rule in policy["rules"]:
        name = rule["syscall"]
        if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) < 0:
            unknown.append(name)
            continue
        args = []
        for arg in rule.get("args", []):
            if arg["op"] == "masked_eq":
                args.append(seccomp.Arg(arg["index"], seccomp.MASKED_EQ, arg["mask"], arg["value"]))
            else:
                args.append(seccomp.Arg(arg["index"], OPS[arg["op"]], arg["value"]))
        syscall_filter.add_rule(seccomp.ERRNO(rule["errno"]), name, *args)
    for name in sorted(set(unknown)):
        print(f"unknown {name}", file=sys.stderr)
    sys.stdout.flush()
    syscall_filter.export_bpf(sys.stdout)


main()
