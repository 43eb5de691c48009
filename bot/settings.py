from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from inference.media.limits import MediaLimits


class Settings(BaseSettings):
    """Every setting of memeswap, from `MEMESWAP_*` environment variables and `.env`.

    One instance is built at start-up and passed down; nothing reads the environment later.
    """

    model_config = SettingsConfigDict(env_prefix="MEMESWAP_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("memeswap")))
    models_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_cache_dir("memeswap")) / "models")
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_template_bytes: int = 50 * 1024 * 1024
    max_template_frames: int = 300
    max_template_seconds: float = 15.0
    max_template_side: int = 1024
    max_selfie_yaw_degrees: float = 30.0
    label_outputs: bool = True
    swapper: Literal["auto", "classic", "inswapper"] = "auto"
    analyser: Literal["auto", "mediapipe", "insightface"] = "auto"
    onnx_provider: Literal["auto", "tensorrt", "cuda", "cpu"] = "auto"
    swap_batch_size: int = 16
    mouth_mask: bool = False
    enhancer: bool = False
    enhancer_blend: float = 0.7

    @property
    def templates_dir(self) -> Path:
        return self.data_dir / "templates"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache" / "tracks"

    def media_limits(self) -> MediaLimits:
        return MediaLimits(
            max_upload_bytes=self.max_upload_bytes,
            max_image_pixels=self.max_image_pixels,
            max_template_bytes=self.max_template_bytes,
            max_frames=self.max_template_frames,
            max_seconds=self.max_template_seconds,
            max_template_side=self.max_template_side,
        )
