"""WebRTC preview: a session's rendered frames and audio to a browser, negotiated WHEP-style.

    POST   /v1/sessions/{name}/webrtc        body: the browser's SDP offer (application/sdp, one
                                             request, ICE candidates inside) -> 201 + SDP answer,
                                             Location: /v1/sessions/{name}/webrtc/{id}
    DELETE /v1/sessions/{name}/webrtc/{id}   hang up -> 200
    /v1/webrtc, /v1/webrtc/{id}              the same for the single ("main") session

aiortc (on PyAV) does ICE, DTLS-SRTP and the codecs (VP8 or H.264 video and Opus audio, as the
browser's offer and aiortc agree). Its tracks here render nothing: they read the session's
PreviewTap (dhlive_cli.live.preview), which the session's draw thread fills with the frames it
drew for its outputs. A track waits for the session's next tick and then takes the newest frame,
so a viewer whose encoder or network is slow gets fewer frames; the session's clock never waits
for a viewer. No STUN or TURN server is configured: the server makes no outside connection, and
its media sockets answer only ICE checks carrying the credentials of an answer given over this
(token- and Origin-guarded) API.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import secrets
import time
from typing import TYPE_CHECKING

import numpy as np
from aiohttp import web

from dhlive_cli.api.guards import ApiError

if TYPE_CHECKING:
    from dhlive_cli.live import LiveSession

log = logging.getLogger(__name__)

MAX_SDP_BYTES = 64 * 2**10  # an offer with audio, video and a dozen candidates is ~5 KB
MAX_CANDIDATES = 32  # UDP ICE candidates per media section: a browser offers one or two per network
# interface; each one is a peer the server sends STUN checks to, so a thousand would make it
# spray UDP at addresses of the client's choosing
MAX_VIEWERS_TOTAL = 16  # per process, over all sessions (each session also has its max_viewers)
CONNECT_TIMEOUT_S = 20.0  # an answered offer that has not connected by then is hung up
VIDEO_CLOCK_HZ = 90000  # RTP video clock (RFC 3551); PyAV timestamps in this time base
AUDIO_RATE = 16000  # the engine's sample rate: audio frames carry its ticks unchanged
MIC_MAX_QUEUED_S = 0.12  # a browser microphone keeps at most this much speech queued (--input mic: 0.25;
# WebRTC delivers 20 ms packets steadily, so less slack is needed and less delay is kept)
MIC_KEEP_SAMPLES = int(MIC_MAX_QUEUED_S * AUDIO_RATE)


def _aiortc():
    try:
        import aiortc
    except ImportError:
        raise ApiError(501, "the WebRTC preview needs aiortc: pip install 'dhlive[webrtc]'") from None
    return aiortc


class Viewer:
    """One browser watching one session: its RTCPeerConnection, two tracks reading the session's
    PreviewTap, and the wake-up the draw thread sends each tick (through the API loop)."""

    def __init__(self, vid: str, name: str, session: "LiveSession", loop: asyncio.AbstractEventLoop):
        self.id, self.name, self.session = vid, name, session
        self.tap = session.preview
        self.loop = loop
        self.pc = None
        self.created = time.monotonic()
        self.closed = False
        self.frames_sent = 0
        self.audio_ticks_skipped = 0
        self._video_evt = asyncio.Event()
        self._audio_evt = asyncio.Event()
        self._attached = False
        self.mic_task: asyncio.Task | None = None
        self.mic_samples = 0  # 16 kHz samples of the browser's microphone pushed as speech
        self.mic_dropped = 0  # samples trimmed (over MIC_MAX_QUEUED_S) or refused (buffer full)

    def _wake(self) -> None:  # API loop
        self._video_evt.set()
        self._audio_evt.set()

    def on_tick(self) -> None:
        """Draw thread: hand the wake-up to the API loop; never waits."""
        self.loop.call_soon_threadsafe(self._wake)

    def attach(self) -> bool:
        self._attached = self.tap.attach(self.on_tick)
        return self._attached

    def detach(self) -> None:
        if self._attached:
            self._attached = False
            self.tap.detach(self.on_tick)


def _tracks(viewer: Viewer):
    """(video, audio) aiortc tracks of a viewer. Built here so aiortc is imported only when a
    browser asks for a preview."""
    import av
    from aiortc import MediaStreamTrack
    from aiortc.mediastreams import MediaStreamError

    fps = viewer.session.tb.fps
    video_tb = fractions.Fraction(1, VIDEO_CLOCK_HZ)
    audio_tb = fractions.Fraction(1, AUDIO_RATE)
    tap = viewer.tap

    class SessionVideo(MediaStreamTrack):
        """The newest frame of the session at each of its ticks (VideoFrame yuv420p, pts of frame
        k: floor(k x 90000 / fps) at 90 kHz, 3600 per frame at 25 fps)."""

        kind = "video"

        def __init__(self):
            super().__init__()
            self._last = -1

        async def recv(self):
            while True:
                if self.readyState != "live" or viewer.closed:
                    raise MediaStreamError
                slot, tick = tap.hold_latest(self._last)
                if slot >= 0:
                    try:
                        frame = av.VideoFrame.from_ndarray(tap.frames[slot], format="yuv420p")
                    finally:
                        tap.release(slot)
                    self._last = tick
                    frame.pts = tick * VIDEO_CLOCK_HZ // fps  # exact at any fps, no rounding that adds up
                    frame.time_base = video_tb
                    viewer.frames_sent += 1
                    return frame
                viewer._video_evt.clear()
                await viewer._video_evt.wait()

    class SessionAudio(MediaStreamTrack):
        """The session's audio tick by tick (AudioFrame s16 mono 16 kHz, each tick's samples:
        16000 / fps rounded as the session's clock has them; pts in samples of that clock).
        Opus resamples it to 48 kHz in aiortc's encoder."""

        kind = "audio"

        def __init__(self):
            super().__init__()
            self._pos = tap.ticks
            self._t0: int | None = None  # session sample of the first tick sent: pts 0
            self._buf = np.zeros(tap.samples_per_tick, dtype=np.float32)
            self._pcm = np.zeros(tap.samples_per_tick, dtype=np.int16)

        async def recv(self):
            while True:
                if self.readyState != "live" or viewer.closed:
                    raise MediaStreamError
                got, skipped, n, start = tap.read_audio_at(self._pos, self._buf)
                if got >= 0:
                    self._pos = got + 1
                    viewer.audio_ticks_skipped += skipped
                    if self._t0 is None:
                        self._t0 = start
                    np.multiply(np.clip(self._buf, -1.0, 1.0, out=self._buf), 32767.0, out=self._buf)
                    self._pcm[:] = self._buf
                    frame = av.AudioFrame(format="s16", layout="mono", samples=n)
                    frame.planes[0].update(self._pcm[:n].tobytes())
                    frame.sample_rate = AUDIO_RATE
                    frame.pts = start - self._t0
                    frame.time_base = audio_tb
                    return frame
                viewer._audio_evt.clear()
                await viewer._audio_evt.wait()

    return SessionVideo(), SessionAudio()


async def _feed_microphone(viewer: Viewer, track, server) -> None:
    """Decoded audio from the browser (Opus, 48 kHz) -> 16 kHz mono float32 -> the session's
    speech buffer, like `--input mic`: at most MIC_MAX_QUEUED_S stays queued (older samples are
    dropped and counted), a full buffer refuses the chunk, nothing grows. Ends when the track or
    the viewer does."""
    import av
    from aiortc.mediastreams import MediaStreamError

    resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
    speech = viewer.session.speech
    try:
        while not viewer.closed:
            frame = await track.recv()
            for out in resampler.resample(frame):
                pcm = out.to_ndarray().reshape(-1)
                if speech.push(pcm):
                    viewer.mic_samples += pcm.shape[0]
                    server.mic_samples += pcm.shape[0]
                    # a browser's clock is not ours and its packets come in bursts: as with
                    # `--input mic`, speech queued beyond MIC_MAX_QUEUED_S goes, oldest first,
                    # instead of becoming delay
                    viewer.mic_dropped += speech.trim_to(MIC_KEEP_SAMPLES)
                else:
                    viewer.mic_dropped += pcm.shape[0]
    except MediaStreamError:
        pass


def check_offer(sdp: str) -> None:
    """Refuse (ApiError 400) an SDP offer the preview has no use for, before aiortc acts on it:
    it must have one audio and/or one video section and nothing else (no data channels), a DTLS
    fingerprint, at most MAX_CANDIDATES UDP ICE candidates per section, and video the browser only
    receives (recvonly/inactive): the server never reads a browser's video, and aiortc would
    decode it into a queue nobody empties (memory grows ~14 MB/s for 640x480 at 30 fps).
    Audio may be sendrecv: it is the browser's microphone (_feed_microphone reads it).
    Directions per RFC 8866 section 6.7 (absent = sendrecv)."""
    from aiortc import sdp as aiortc_sdp

    if "a=fingerprint:" not in sdp:
        raise ApiError(400, "the SDP offer has no DTLS fingerprint (a=fingerprint)")
    try:
        desc = aiortc_sdp.SessionDescription.parse(sdp)
    except Exception as e:  # noqa: BLE001 - the parser fails on malformed text in many ways
        why = " ".join(str(e).split())[:160] or type(e).__name__
        raise ApiError(400, f"cannot use this SDP offer: {why}") from None
    kinds = [m.kind for m in desc.media]
    if not {"audio", "video"} & set(kinds):
        raise ApiError(400, "the SDP offer has no audio or video section")
    other = sorted(set(kinds) - {"audio", "video"})
    if other:
        raise ApiError(400, f"the SDP offer has a section the preview does not use: m={other[0][:20]}")
    if kinds.count("audio") > 1 or kinds.count("video") > 1:
        raise ApiError(400, "the SDP offer has more than one audio or video section")
    for m in desc.media:
        # TCP candidates cost nothing: aioice pairs only UDP ones (Candidate.can_pair_with)
        udp = sum(1 for c in m.ice_candidates if (c.protocol or "").lower() == "udp")
        if udp > MAX_CANDIDATES:
            raise ApiError(400, f"the SDP offer has {udp} UDP ICE candidates in its {m.kind} section "
                                f"(at most {MAX_CANDIDATES})")
        if m.kind == "video" and (m.direction or "sendrecv") not in ("recvonly", "inactive"):
            raise ApiError(400, "the preview sends video and takes none: offer video as recvonly")


class WebRtcRoutes:
    """WebRTC offer/answer handlers of ApiServer (a mixin; state in self._viewers, made by the
    server's constructor, and touched on the API loop only)."""

    def _viewer_path(self, request: web.Request, vid: str) -> str:
        name = request.match_info.get("name")
        return f"/v1/sessions/{name}/webrtc/{vid}" if name else f"/v1/webrtc/{vid}"

    async def _webrtc_offer(self, request: web.Request) -> web.Response:
        aiortc = _aiortc()
        session = self._session(request)
        name = request.match_info.get("name", "main")
        mime = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if mime != "application/sdp":
            raise ApiError(415, "send the SDP offer as application/sdp")
        body = await self._read_body(request, MAX_SDP_BYTES, f"SDP offer over {MAX_SDP_BYTES // 1024} KiB")
        try:
            sdp = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "the SDP offer must be UTF-8 text") from None
        check_offer(sdp)
        if len(self._viewers) >= self.max_viewers_total:
            raise ApiError(503, f"this server already has {self.max_viewers_total} viewers", {"Retry-After": "5"})
        if session.cancel.is_set():
            raise ApiError(404, f"no session named {name!r}")
        if session.preview.max_viewers == 0:
            raise ApiError(403, "the browser preview is off for this server (--max-viewers 0)")
        vid = secrets.token_hex(8)
        viewer = Viewer(vid, name, session, asyncio.get_running_loop())
        if not viewer.attach():
            raise ApiError(503, f"session {name!r} already has its {session.preview.max_viewers} viewers "
                                "(--max-viewers)", {"Retry-After": "5"})
        self._viewers[vid] = viewer
        try:
            pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))  # no STUN: nothing outside is contacted
            viewer.pc = pc
            video, audio = _tracks(viewer)

            @pc.on("track")
            def on_track(track):
                if track.kind == "audio":  # the browser's microphone: speech for the session
                    viewer.mic_task = asyncio.ensure_future(_feed_microphone(viewer, track, self))

            @pc.on("connectionstatechange")
            async def on_state():
                if pc.connectionState in ("failed", "closed"):
                    await self._hang_up(vid)

            try:
                await pc.setRemoteDescription(aiortc.RTCSessionDescription(sdp=sdp, type="offer"))
                kinds = {t.kind for t in pc.getTransceivers()}
                if "video" in kinds:
                    pc.addTrack(video)
                if "audio" in kinds:
                    pc.addTrack(audio)
                await pc.setLocalDescription(await pc.createAnswer())
                answer = pc.localDescription.sdp
            except Exception as e:  # noqa: BLE001 - aiortc fails on malformed offers in many ways
                # whatever the offer made the library raise is the client's error, in one line
                log.debug("WebRTC offer refused", exc_info=True)
                why = " ".join(str(e).split())[:160] or type(e).__name__
                raise ApiError(400, f"cannot use this SDP offer: {why}") from None
        except BaseException:
            await self._hang_up(vid)
            raise
        asyncio.get_running_loop().call_later(CONNECT_TIMEOUT_S, self._hang_up_if_unconnected, vid)
        log.info("WebRTC viewer %s on session %s", vid, name)
        return web.Response(status=201, body=answer.encode(), content_type="application/sdp",
                            headers={"Location": self._viewer_path(request, vid)})

    def _hang_up_if_unconnected(self, vid: str) -> None:
        v = self._viewers.get(vid)
        if v is not None and v.pc is not None and v.pc.connectionState != "connected":
            asyncio.ensure_future(self._hang_up(vid))

    async def _webrtc_delete(self, request: web.Request) -> web.Response:
        vid = request.match_info["vid"]
        v = self._viewers.get(vid)
        name = request.match_info.get("name", "main")
        if v is None or v.name != name and v.session is not self._session(request):
            raise ApiError(404, "no such viewer")
        await self._hang_up(vid)
        return web.json_response({"closed": vid})

    async def _hang_up(self, vid: str) -> None:
        """Close a viewer: detach from its session's tap, close its peer connection. Idempotent."""
        v = self._viewers.pop(vid, None)
        if v is None:
            return
        v.closed = True
        v.detach()
        v._wake()  # tracks waiting for a tick see `closed` and end
        if v.mic_task is not None:
            v.mic_task.cancel()
        if v.pc is not None:
            try:
                await v.pc.close()
            except Exception as e:  # noqa: BLE001 - a half-negotiated connection may fail to close cleanly
                log.debug("closing viewer %s: %s: %s", vid, type(e).__name__, e)
        log.info("WebRTC viewer %s left session %s", vid, v.name)

    async def _hang_up_all(self, session=None) -> None:
        ids = [vid for vid, v in self._viewers.items() if session is None or v.session is session]
        if ids:
            await asyncio.wait([asyncio.ensure_future(self._hang_up(vid)) for vid in ids], timeout=1.0)
