"""What reading a camera costs on this CPU, and what skipping non-reference frames saves.

    python -m benchmarks.camera_decode [--seconds 20] [--sizes 960x540 1280x720 1920x1080]

A stream processor decodes its camera continuously (service/streaming/capture.py) and analyses
only the newest frame at each sampling interval, so most decoded frames are thrown away. For
each size, 25 fps H.264 of the streams benchmark's moving faces in two structures: what most IP
cameras send (I and P frames only, a keyframe every 2 s) and x264's default (with B-frames, as
some cameras and most files have), decoded as capture.py decodes (FFmpeg's own threads), once
whole and once with FFmpeg's skip_frame=NONREF (frames nothing else refers to are not decoded).
Reports per run the CPU seconds per second of video (the share of one core a camera takes) and
the frames decoded. Writes benchmarks/results/camera-decode-cpu.json.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from typing import Any

import av

from benchmarks import RESULTS, git_commit
from benchmarks.photos import default_faces
from benchmarks.streams import script
from ml.cpu import describe_cpu
from ml.evaluation.videos import encode, frame

FPS = 25
STRUCTURES = {
    "camera (I and P frames)": {"x264-params": "bframes=0:keyint=50:min-keyint=50"},
    "x264 default (B-frames)": {"x264-params": "keyint=50:min-keyint=50"},
}


def decode(video: bytes, skip: str) -> dict[str, float]:
    with av.open(io.BytesIO(video)) as source:
        stream = source.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = skip
        cpu, wall, frames = time.process_time(), time.perf_counter(), 0
        for _ in source.decode(stream):
            frames += 1
        return {
            "cpu_s": time.process_time() - cpu,
            "wall_s": time.perf_counter() - wall,
            "frames": frames,
        }


def measure(width: int, height: int, seconds: int) -> list[dict[str, Any]]:
    shown = script(default_faces(), width, height, seconds)
    frames = [frame(shown, t) for t in range(0, seconds * 1000, 1000 // FPS)]
    rows = []
    for structure, options in STRUCTURES.items():
        video = encode(frames, FPS, codec_options=options)
        for skip in ("DEFAULT", "NONREF"):
            decode(video, skip)  # warm: the first open pays for the decoder's set-up
            run = decode(video, skip)
            rows.append(
                {
                    "size": f"{width}x{height}",
                    "structure": structure,
                    "skip_frame": skip,
                    "frames_decoded": run["frames"],
                    "frames_in_video": len(frames),
                    "cpu_s_per_video_s": round(run["cpu_s"] / seconds, 4),
                    "wall_s_per_video_s": round(run["wall_s"] / seconds, 4),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--sizes", nargs="+", default=["960x540", "1280x720", "1920x1080"])
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        width, height = (int(side) for side in size.split("x"))
        rows += measure(width, height, args.seconds)
    result = {
        "commit": git_commit(),
        "cpu": describe_cpu(),
        "pyav": av.__version__,
        "ffmpeg": av.library_versions["libavcodec"],
        "seconds": args.seconds,
        "runs": rows,
    }
    out = RESULTS / "camera-decode-cpu.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
