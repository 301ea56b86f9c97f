"""A real RTSP camera for tests: GStreamer's RTSP server (Debian: gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-base / -good, python3-gi), run by the system Python, which has ``gi``.

    /usr/bin/python3 tests/rtsp_server.py PORT

serves ``rtsp://127.0.0.1:PORT/cam``: a 320x240 test pattern at 10 FPS, JPEG over RTP (what
an IP camera's MJPEG profile sends). It prints ``ready`` once listening and serves until it is
killed (a camera that goes away). tests/test_sources_rtsp.py starts it.
"""

from __future__ import annotations

import sys

PIPELINE = ("( videotestsrc is-live=true pattern=ball ! "
            "video/x-raw,format=I420,width=320,height=240,framerate=10/1 ! "
            "jpegenc quality=80 ! rtpjpegpay name=pay0 pt=26 )")


def main(port: int) -> None:
    """Serve the test pattern on ``port`` until killed."""
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        raise SystemExit(f"rtsp_server: cannot listen on 127.0.0.1:{port}")
    loop = GLib.MainLoop()
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
