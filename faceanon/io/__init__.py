"""Read and write stages: images (EXIF orientation applied, metadata stripped), videos, folders."""
from .images import IMAGE_EXTENSIONS, Picture, read_image, write_image
from .paths import Job, plan_jobs
from .video import VIDEO_EXTENSIONS

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "Picture", "read_image", "write_image", "Job", "plan_jobs"]
