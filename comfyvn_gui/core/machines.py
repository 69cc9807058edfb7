"""Machines the app rents for a job: their names and tags, the hard deadline, and the start-up
script (docs/architecture.md, "Dispatch: machines"). Pure: the lifecycle
(``providers/machine_lifecycle.py``) and each machine provider apply them.

Names and tags
    Everything the app creates is named ``comfyvn-<home_id>-job<id>`` and, where the provider
    has tags or labels, tagged ``comfyvn-gui-home=<home_id>``, ``comfyvn-gui-job=<id>``:
    ``running`` finds a home's resources by them, and a resource no job owns is an orphan.

The hard deadline
    ``min(runtime ceiling, cost ceiling / hourly price) + a download allowance``, as an absolute
    UTC time: what a machine can bill without the app never exceeds the ceiling the user saw
    plus the allowance, and a machine that reboots does not restart the clock.

The start-up script (POSIX ``sh``; every value shell-quoted)
    1. the dead-man switch first (it runs whatever else fails): a loop that sleeps until the
       absolute deadline, then runs the provider's stop command — ``shutdown -h now`` on a VM,
       ``podTerminate`` with the pod-scoped key on a RunPod pod, the instance's own
       ``DELETE /instances/<id>/`` with the instance-scoped key on Vast.ai;
    2. the SSH host key the app generated (so it knows the key before first contact: no trust on
       first use for machines it created) and the one-time client key in ``ssh_user``'s
       ``authorized_keys``; password logins off;
    3. ComfyUI, listening on the machine's loopback only (``127.0.0.1:<comfyui_port>``): on a VM
       the ``comfyui_image`` container with its port published on 127.0.0.1 only; in a container
       (the image is ComfyUI's) the ``comfyui_command``.

    Its parts are fenced by ``# >>> comfyvn:<part>`` / ``# <<< comfyvn:<part>`` lines
    (:func:`script_part` cuts one out: tests run the dead-man part with a stub ``shutdown``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

__all__ = [
    "DOWNLOAD_ALLOWANCE_S",
    "HOME_TAG",
    "JOB_TAG",
    "DeadmanKind",
    "StartupPlan",
    "hard_deadline",
    "parse_resource_name",
    "resource_name",
    "resource_tags",
    "script_part",
    "startup_script",
]

HOME_TAG = "comfyvn-gui-home"
JOB_TAG = "comfyvn-gui-job"
#: Time a machine keeps after the ceiling to hand back what finished (seconds).
DOWNLOAD_ALLOWANCE_S = 300.0

_NAME = re.compile(r"^comfyvn-(?P<home>[0-9a-f]{4,64})-job(?P<job>[0-9]{1,12})$")


def resource_name(home_id: str, job_id: int) -> str:
    """The name of everything the app creates for ``job_id`` of this home."""
    return f"comfyvn-{home_id}-job{job_id}"


def parse_resource_name(name: str | None) -> tuple[str, int] | None:
    """``(home_id, job_id)`` of a name :func:`resource_name` made, else None."""
    m = _NAME.fullmatch(name or "")
    return (m["home"], int(m["job"])) if m else None


def resource_tags(home_id: str, job_id: int) -> dict[str, str]:
    """The tags (labels) of everything the app creates for ``job_id``."""
    return {HOME_TAG: home_id, JOB_TAG: str(job_id)}


def hard_deadline(
    start: datetime,
    *,
    runtime_s: float,
    cost_usd: float | None,
    hourly_usd: float | None,
    allowance_s: float = DOWNLOAD_ALLOWANCE_S,
) -> datetime:
    """When a machine must be gone at the latest (see the module's text)."""
    seconds = runtime_s
    if cost_usd is not None and hourly_usd:
        seconds = min(seconds, cost_usd / hourly_usd * 3600)
    return (start + timedelta(seconds=max(0.0, seconds) + allowance_s)).astimezone(UTC)


DeadmanKind = Literal["shutdown", "runpod_pod", "vast"]


@dataclass(frozen=True)
class StartupPlan:
    """What the start-up script of one machine holds."""

    name: str
    deadline: datetime  # absolute (UTC)
    deadman: DeadmanKind
    host_private_key: str  # OpenSSH private key (PEM text)
    host_public_key: str  # "ssh-ed25519 AAAA..."
    client_public_key: str  # "ssh-ed25519 AAAA... comment"
    ssh_user: str
    comfyui_port: int = 8188
    mode: Literal["vm", "container"] = "vm"
    image: str = ""  # vm: the ComfyUI container image
    comfyui_command: str = ""  # container: how the image starts ComfyUI (gets --listen/--port)
    api_url: str = ""  # runpod_pod: the GraphQL URL; vast: the API base (…/api/v0)


def _q(value: str | int) -> str:
    return shlex.quote(str(value))


def _deadman(plan: StartupPlan) -> str:
    epoch = int(plan.deadline.timestamp())
    if plan.deadman == "runpod_pod":
        # podTerminate (not podStop: a stopped pod still bills its disk) with the pod-scoped
        # RUNPOD_API_KEY that RunPod puts in the pod; GraphQL with variables.
        stop = (
            'body=$(printf \'{"query":"mutation T($input: PodTerminateInput!) '
            '{ podTerminate(input: $input) }","variables":{"input":{"podId":"%s"}}}\' '
            '"$RUNPOD_POD_ID")\n'
            '    until out=$(curl -fsS -m 30 -X POST -H "Authorization: Bearer $RUNPOD_API_KEY" '
            f"-H 'Content-Type: application/json' --data \"$body\" {_q(plan.api_url)}) "
            "&& ! printf '%s' \"$out\" | grep -q '\"errors\"'; do sleep 60; done"
        )
    elif plan.deadman == "vast":
        # The instance-scoped key Vast.ai puts in the container (PID 1's environment).
        stop = (
            "env1=$(tr '\\000' '\\n' < /proc/1/environ 2>/dev/null || true)\n"
            "    key=${CONTAINER_API_KEY:-$(printf '%s\\n' \"$env1\" | "
            "sed -n 's/^CONTAINER_API_KEY=//p')}\n"
            "    cid=${CONTAINER_ID:-$(printf '%s\\n' \"$env1\" | sed -n 's/^CONTAINER_ID=//p')}\n"
            '    until curl -fsS -m 30 -X DELETE -H "Authorization: Bearer $key" '
            f'{_q(plan.api_url.rstrip("/") + "/instances/")}"$cid/"; do sleep 60; done'
        )
    else:
        stop = "shutdown -h now || poweroff"
    return f"""comfyvn_deadline={epoch}  # {plan.deadline.astimezone(UTC).isoformat()} (UTC)
comfyvn_deadman() {{
  while :; do
    now=$(date +%s)
    [ "$now" -ge "$comfyvn_deadline" ] && break
    left=$((comfyvn_deadline - now))
    [ "$left" -gt 30 ] && left=30
    sleep "$left"
  done
  {stop}
}}
comfyvn_deadman </dev/null >/dev/null 2>&1 &"""


def _keys(plan: StartupPlan) -> str:
    user = _q(plan.ssh_user)
    host_key = plan.host_private_key.strip()
    if "COMFYVN_HOST_KEY" in host_key:  # (cannot happen with a real key; never end early)
        raise ValueError("the host key holds the heredoc's end marker")
    sshd = (
        "mkdir -p /run/sshd\n"
        "pkill -x sshd 2>/dev/null || true\n"
        "/usr/sbin/sshd -h /etc/ssh/comfyvn_host_ed25519_key -o PasswordAuthentication=no"
        if plan.mode == "container"
        else "rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub\n"
        "cp /etc/ssh/comfyvn_host_ed25519_key /etc/ssh/ssh_host_ed25519_key\n"
        "cp /etc/ssh/comfyvn_host_ed25519_key.pub /etc/ssh/ssh_host_ed25519_key.pub\n"
        "systemctl restart ssh 2>/dev/null || systemctl restart sshd 2>/dev/null || "
        "service ssh restart"
    )
    return f"""umask 077
mkdir -p /etc/ssh
cat > /etc/ssh/comfyvn_host_ed25519_key <<'COMFYVN_HOST_KEY'
{host_key}
COMFYVN_HOST_KEY
printf '%s\\n' {_q(plan.host_public_key.strip())} > /etc/ssh/comfyvn_host_ed25519_key.pub
comfyvn_user={user}
comfyvn_home=$(getent passwd "$comfyvn_user" | cut -d: -f6)
[ -n "$comfyvn_home" ] || comfyvn_home=/root
mkdir -p "$comfyvn_home/.ssh"
printf '%s\\n' {_q(plan.client_public_key.strip())} >> "$comfyvn_home/.ssh/authorized_keys"
chown -R "$comfyvn_user" "$comfyvn_home/.ssh" 2>/dev/null || true
chmod 700 "$comfyvn_home/.ssh"
chmod 600 "$comfyvn_home/.ssh/authorized_keys"
{sshd}"""


def _comfyui(plan: StartupPlan) -> str:
    port = int(plan.comfyui_port)
    if plan.mode == "container":
        if not plan.comfyui_command:
            return "true  # the image serves ComfyUI itself"
        command = " ".join(_q(a) for a in shlex.split(plan.comfyui_command))
        return (
            f"nohup {command} --listen 127.0.0.1 --port {port} "
            ">/var/log/comfyui.log 2>&1 </dev/null &"
        )
    return (
        f"docker run -d --name {_q(plan.name)} --restart no --gpus all "
        f"-p 127.0.0.1:{port}:8188 {_q(plan.image)}"
    )


def _one_line(text: str) -> str:
    """``text`` made safe for a comment line (no line break can end the comment)."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)


def startup_script(plan: StartupPlan) -> str:
    """The whole start-up script of ``plan``'s machine (see the module's text)."""
    if not 0 < int(plan.comfyui_port) < 65536:
        raise ValueError(f"comfyui_port {plan.comfyui_port} is not a port")
    parts = (
        ("deadman", _deadman(plan)),
        ("ssh", _keys(plan)),
        ("comfyui", _comfyui(plan)),
    )
    body = "\n".join(f"# >>> comfyvn:{n}\n{text}\n# <<< comfyvn:{n}" for n, text in parts)
    return (
        "#!/bin/sh\n"
        f"# comfyvn-gui start-up script for {_one_line(plan.name)} (generated; values quoted)\n"
        f"{body}\n"
    )


def script_part(script: str, part: str) -> str:
    """One fenced part of a start-up script (``deadman``, ``ssh``, ``comfyui``)."""
    m = re.search(
        rf"^# >>> comfyvn:{re.escape(part)}\n(.*?)^# <<< comfyvn:{re.escape(part)}$",
        script,
        re.S | re.M,
    )
    if m is None:
        raise KeyError(part)
    return m.group(1)


def cache_mount_part(
    host: str,
    share: str,
    username: str,
    password: str,
    mount_point: str = "/mnt/comfyvn-cache",
) -> str:
    """A fenced ``cache`` part of a start-up script that mounts an SMB (CIFS) share.

    ``//host/share`` is mounted at ``mount_point`` with ``mount -t cifs ... -o
    credentials=/etc/comfyvn-cache.cred,uid=0,gid=0``, after installing ``cifs-utils``
    (``mount.cifs``) with apt-get when it is missing. The user name and password go into that
    root-only file (written under ``umask 077`` from a quoted heredoc, so neither is ever on a
    command line nor expanded by the shell); the share and the mount point are shell-quoted. A
    share already mounted there is left as it is (the script runs on every boot). Nothing here
    stops the machine: the part runs in a subshell, and a failure is written to
    ``/var/log/comfyvn-cache.log`` and standard error, after which the mount point is a plain
    folder on the machine's own disk. Raises ValueError for a host or share that is not one
    (an empty one, a slash, a backslash or a control character) or a user name or password
    with a line break (the credentials file is one ``key=value`` a line); the message never
    repeats either of those two.
    """
    marker = "COMFYVN_CACHE_CRED"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.:-]*", host):
        raise ValueError(f"the cache share's host {host!r} is not an address")
    if not share or re.search(r"[/\\\x00-\x1f\x7f]", share):
        raise ValueError(f"the cache share's name {share!r} is not a share name")
    if not mount_point.startswith("/") or re.search(r"[,\x00-\x1f\x7f]", mount_point):
        raise ValueError(f"the cache mount point {mount_point!r} is not an absolute path")
    for what, value in (("user name", username), ("password", password)):
        if not value or re.search(r"[\x00\r\n]", value) or marker in value:
            raise ValueError(f"the cache share's {what} is empty or has a line break")
    cred = "/etc/comfyvn-cache.cred"
    text = f"""(
  umask 077
  comfyvn_log=/var/log/comfyvn-cache.log
  comfyvn_cred={cred}
  comfyvn_mnt={_q(mount_point)}
  comfyvn_say() {{
    echo "comfyvn-cache: $*" >&2
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) comfyvn-cache: $*" >>"$comfyvn_log" 2>/dev/null
  }}
  mkdir -p "$comfyvn_mnt"
  rm -f "$comfyvn_cred"
  cat > "$comfyvn_cred" <<'{marker}'
username={username}
password={password}
{marker}
  chmod 600 "$comfyvn_cred"
  if ! command -v mount.cifs >/dev/null 2>&1; then
    comfyvn_say "installing cifs-utils"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get -o DPkg::Lock::Timeout=120 \\
      update -q >>"$comfyvn_log" 2>&1
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get -o DPkg::Lock::Timeout=120 \\
      install -y -q cifs-utils >>"$comfyvn_log" 2>&1
  fi
  if mountpoint -q "$comfyvn_mnt" 2>/dev/null; then
    comfyvn_say "already mounted at $comfyvn_mnt"
  elif mount -t cifs {_q(f"//{host}/{share}")} "$comfyvn_mnt" \\
      -o "credentials=$comfyvn_cred,uid=0,gid=0" >>"$comfyvn_log" 2>&1; then
    comfyvn_say "mounted at $comfyvn_mnt"
  else
    comfyvn_say "NOT mounted (see $comfyvn_log); $comfyvn_mnt is on the machine's own disk"
  fi
) || true"""
    return f"# >>> comfyvn:cache\n{text}\n# <<< comfyvn:cache"
