"""Windows: sessions through WTS (Remote Desktop Services API), idle through GetLastInputInfo.

``GetLastInputInfo`` only sees input of the desktop session the calling process runs in, so
idle detection must run inside the user's session (a per-user scheduled task, see
deploy/windows/README.md); a service in session 0 still enumerates sessions and their lock
state through WTS, and the ``LastInputTime`` that WTS keeps for remote sessions.

The ctypes calls run only on Windows; the arithmetic and decoding are pure functions, so the
module imports and is tested on Linux.
"""

from __future__ import annotations

import ctypes
import os
import sys

from labmeter.agent.platform import NONE, WINDOWS_INPUT, WTS, Session

# WTS_CONNECTSTATE_CLASS
WTS_ACTIVE, WTS_CONNECTED, WTS_DISCONNECTED = 0, 1, 4
# WTS_INFO_CLASS
WTS_USER_NAME, WTS_CLIENT_PROTOCOL_TYPE, WTS_SESSION_INFO_EX = 5, 16, 25
PROTOCOL_RDP = 2
# NetUserGetLocalGroups / NetUserGetGroups
NERR_SUCCESS, NERR_USER_NOT_FOUND, LG_INCLUDE_INDIRECT = 0, 2221, 1
MAX_PREFERRED_LENGTH = 0xFFFFFFFF
# WTSINFOEX_LEVEL1.SessionFlags
WTS_SESSIONSTATE_LOCK, WTS_SESSIONSTATE_UNLOCK = 0, 1
FILETIME_PER_S = 10_000_000  # 100 ns units
TICK_WRAP = 1 << 32


def idle_ms(now_tick64: int, last_input_tick32: int) -> int:
    """Milliseconds since the last input from ``GetTickCount64`` and ``LASTINPUTINFO.dwTime``.

    ``dwTime`` is a 32-bit tick count that wraps every 49.7 days; compare it with the low 32
    bits of the 64-bit tick modulo 2**32, which is right for any idle time below 49.7 days.
    """
    return ((now_tick64 % TICK_WRAP) - last_input_tick32) % TICK_WRAP


def is_locked(session_flags: int, windows_version: tuple[int, int]) -> bool | None:
    """Lock state from ``WTSINFOEX_LEVEL1.SessionFlags``; None when Windows does not know.

    Windows 7 and Server 2008 R2 (6.1) report the two values swapped, a documented bug.
    """
    if session_flags not in (WTS_SESSIONSTATE_LOCK, WTS_SESSIONSTATE_UNLOCK):
        return None
    locked = session_flags == WTS_SESSIONSTATE_LOCK
    return not locked if windows_version == (6, 1) else locked


def session_from_wts(
    session_id: int,
    state: int,
    user: str,
    protocol: int,
    session_flags: int,
    last_input_filetime: int,
    current_filetime: int,
    windows_version: tuple[int, int] = (10, 0),
    domain: str = "",
) -> Session | None:
    """One interactive session from what WTS reports; None for sessions nobody is logged on to
    (session 0 of the services, the RDP listener, the console before logon)."""
    if not user or state not in (WTS_ACTIVE, WTS_CONNECTED, WTS_DISCONNECTED):
        return None
    idle_s: float | None = None
    # WTS keeps LastInputTime for remote sessions; for the console it is 0 (unknown here).
    if last_input_filetime > 0 and current_filetime >= last_input_filetime:
        idle_s = (current_filetime - last_input_filetime) / FILETIME_PER_S
    return Session(
        login=user,
        idle_s=idle_s,
        locked=bool(is_locked(session_flags, windows_version)),
        remote=protocol == PROTOCOL_RDP,
        active=state == WTS_ACTIVE,
        id=str(session_id),
        display=True,
        domain=domain,
        idle_signal=NONE if idle_s is None else WTS,
    )


class _LastInputInfo(ctypes.Structure):
    _fields_ = (("cbSize", ctypes.c_uint), ("dwTime", ctypes.c_uint32))


class _SessionInfo(ctypes.Structure):
    _fields_ = (
        ("SessionId", ctypes.c_uint32),
        ("pWinStationName", ctypes.c_wchar_p),
        ("State", ctypes.c_int),
    )


class _InfoExLevel1(ctypes.Structure):
    _fields_ = (
        ("SessionId", ctypes.c_ulong),
        ("SessionState", ctypes.c_int),
        ("SessionFlags", ctypes.c_long),
        ("WinStationName", ctypes.c_wchar * 33),
        ("UserName", ctypes.c_wchar * 21),
        ("DomainName", ctypes.c_wchar * 18),
        ("LogonTime", ctypes.c_longlong),
        ("ConnectTime", ctypes.c_longlong),
        ("DisconnectTime", ctypes.c_longlong),
        ("LastInputTime", ctypes.c_longlong),
        ("CurrentTime", ctypes.c_longlong),
        ("IncomingBytes", ctypes.c_uint32),
        ("OutgoingBytes", ctypes.c_uint32),
        ("IncomingFrames", ctypes.c_uint32),
        ("OutgoingFrames", ctypes.c_uint32),
        ("IncomingCompressedBytes", ctypes.c_uint32),
        ("OutgoingCompressedBytes", ctypes.c_uint32),
    )


class _InfoEx(ctypes.Structure):
    _fields_ = (("Level", ctypes.c_uint32), ("Data", _InfoExLevel1))


def input_idle_s() -> float | None:
    """Seconds since the last input in this process's session; None outside Windows."""
    if sys.platform != "win32":
        return None
    info = _LastInputInfo(ctypes.sizeof(_LastInputInfo), 0)
    if not ctypes.windll.user32.GetLastInputInfo(ctypes.byref(info)):
        return None  # session 0 (a service) has no input of its own
    ctypes.windll.kernel32.GetTickCount64.restype = ctypes.c_uint64
    return idle_ms(ctypes.windll.kernel32.GetTickCount64(), info.dwTime) / 1000.0


def own_idle_signal() -> str:
    return WINDOWS_INPUT


def own_session_id() -> str | None:
    if sys.platform != "win32":
        return None
    sid = ctypes.c_uint32()
    pid = ctypes.windll.kernel32.GetCurrentProcessId()
    if not ctypes.windll.kernel32.ProcessIdToSessionId(pid, ctypes.byref(sid)):
        return None
    return str(sid.value)


def _query(session_id: int, info_class: int) -> ctypes.c_void_p | None:
    buffer, size = ctypes.c_void_p(), ctypes.c_uint32()
    if sys.platform != "win32" or not ctypes.windll.wtsapi32.WTSQuerySessionInformationW(
        None, session_id, info_class, ctypes.byref(buffer), ctypes.byref(size)
    ):
        return None
    return buffer


def sessions() -> list[Session]:
    """Interactive sessions from ``WTSEnumerateSessionsW``; empty outside Windows."""
    if sys.platform != "win32":
        return []
    wts = ctypes.windll.wtsapi32
    version = sys.getwindowsversion()
    listing, count = ctypes.POINTER(_SessionInfo)(), ctypes.c_uint32()
    if not wts.WTSEnumerateSessionsW(None, 0, 1, ctypes.byref(listing), ctypes.byref(count)):
        return []
    found: list[Session] = []
    try:
        for i in range(count.value):
            entry = listing[i]
            user_buf = _query(entry.SessionId, WTS_USER_NAME)
            proto_buf = _query(entry.SessionId, WTS_CLIENT_PROTOCOL_TYPE)
            ex_buf = _query(entry.SessionId, WTS_SESSION_INFO_EX)
            try:
                user = ctypes.wstring_at(user_buf) if user_buf else ""
                protocol = (
                    ctypes.cast(proto_buf, ctypes.POINTER(ctypes.c_ushort))[0] if proto_buf else 0
                )
                ex = ctypes.cast(ex_buf, ctypes.POINTER(_InfoEx))[0].Data if ex_buf else None
                session = session_from_wts(
                    entry.SessionId,
                    entry.State,
                    user,
                    protocol,
                    ex.SessionFlags if ex else -1,
                    ex.LastInputTime if ex else 0,
                    ex.CurrentTime if ex else 0,
                    (version.major, version.minor),
                    ex.DomainName if ex else "",
                )
            finally:
                for buf in (user_buf, proto_buf, ex_buf):
                    if buf:
                        wts.WTSFreeMemory(buf)
            if session is not None:
                found.append(session)
    finally:
        wts.WTSFreeMemory(listing)
    return found


def _net_names(call: str, server: str | None, user: str, *flags: int) -> list[str]:
    """Names from a NetUserGet*Groups call at level 0 (entries of one string each)."""
    if sys.platform != "win32":
        return []
    net = ctypes.windll.netapi32
    buffer, read, total = ctypes.c_void_p(), ctypes.c_uint32(), ctypes.c_uint32()
    status = getattr(net, call)(
        server,
        user,
        0,
        *flags,
        ctypes.byref(buffer),
        MAX_PREFERRED_LENGTH,
        ctypes.byref(read),
        ctypes.byref(total),
    )
    try:
        if status == NERR_USER_NOT_FOUND:
            return []
        if status != NERR_SUCCESS:
            raise OSError(status, f"{call} failed for {user!r}")
        entries = ctypes.cast(buffer, ctypes.POINTER(ctypes.c_wchar_p))
        return [str(entries[i]) for i in range(read.value)]
    finally:
        if buffer:
            net.NetApiBufferFree(buffer)


def groups(login: str, domain: str = "") -> list[str]:
    """Local groups of ``domain\\login`` (also those held through a domain group) and, for a
    domain account, its domain groups from a domain controller; empty outside Windows.

    Raises OSError when a domain controller cannot be reached: the caller keeps what it knew.
    """
    if sys.platform != "win32":
        return []
    qualified = f"{domain}\\{login}" if domain else login
    names = _net_names("NetUserGetLocalGroups", None, qualified, LG_INCLUDE_INDIRECT)
    computer = os.environ.get("COMPUTERNAME", "")
    if domain and domain.casefold() != computer.casefold():
        net = ctypes.windll.netapi32
        dc = ctypes.c_void_p()
        status = net.NetGetAnyDCName(None, domain, ctypes.byref(dc))
        if status != NERR_SUCCESS:
            raise OSError(status, f"no domain controller of {domain!r} reachable")
        try:
            names += _net_names("NetUserGetGroups", ctypes.wstring_at(dc), login)
        finally:
            net.NetApiBufferFree(dc)
    return names
