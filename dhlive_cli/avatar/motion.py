"""Idle motion shared by every avatar kind: head sway and breathing as pure functions of time.

Sums of two slow sines with incommensurate periods (7-20 s) never visibly repeat, and seeded
phases keep two avatars from swaying in step. Pure in t, so any thread may ask for any frame.
"""

from __future__ import annotations

import math

TAU = 2 * math.pi


def idle_pose(t: float, phases, tilt_rad: float, sway_px: float, bob_px: float) -> tuple[float, float, float]:
    """(tilt radians, dx, dy) of the head at time t seconds; phases[0:6] are the seeded phases."""
    p = phases
    tilt = tilt_rad * (0.6 * math.sin(TAU * 0.071 * t + p[0]) + 0.4 * math.sin(TAU * 0.163 * t + p[1]))
    dx = sway_px * (0.6 * math.sin(TAU * 0.053 * t + p[2]) + 0.4 * math.sin(TAU * 0.127 * t + p[3]))
    dy = bob_px * (0.5 * math.sin(TAU * 0.089 * t + p[4]) + 0.5 * math.sin(TAU * 0.211 * t + p[5]))
    return tilt, dx, dy


def breath(t: float, phase: float, hz: float, amount_px: float) -> float:
    """Chest/shoulder rise in px at time t: 0 at full exhale, amount_px at full inhale."""
    return amount_px * 0.5 * (1.0 - math.cos(TAU * hz * t + phase))
