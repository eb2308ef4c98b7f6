"""Video files (MP4, MKV, WebM, MOV, AVI through PyAV): every frame upscaled by the engine as a still image
is, the other streams copied, the job cut into segments that survive a crash.

`upscale_video` runs one job; `probe_video` says what a file holds (or refuses it with an InputError);
`plan_segments` is how a job is cut; `check_encoder` validates output.video's codec and pixel format.
"""

from srd.video._codecs import check_encoder, encoder_options
from srd.video._job import VideoResult, discard_work, output_container, upscale_video
from srd.video._plan import Segment, plan_segments
from srd.video._probe import Colour, VideoInfo, probe_video

__all__ = [
    "Colour",
    "Segment",
    "VideoInfo",
    "VideoResult",
    "check_encoder",
    "discard_work",
    "encoder_options",
    "output_container",
    "plan_segments",
    "probe_video",
    "upscale_video",
]
