from dataclasses import dataclass

from bot.settings import Settings
from inference.faces.mediapipe_analyser import MediaPipeAnalyser
from inference.media.limits import MediaLimits
from inference.swappers.classic import ClassicSwapper
from inference.templates.compile import TrackCache
from inference.templates.library import TemplateLibrary


@dataclass
class Components:
    """The engine parts one process builds from its settings, once."""

    analyser: MediaPipeAnalyser
    swapper: ClassicSwapper
    library: TemplateLibrary
    limits: MediaLimits


def build_components(settings: Settings, quiet: bool = True) -> Components:
    analyser = MediaPipeAnalyser(quiet=quiet)
    limits = settings.media_limits()
    library = TemplateLibrary(settings.templates_dir, TrackCache(settings.cache_dir), analyser, limits)
    return Components(analyser, ClassicSwapper(settings.max_selfie_yaw_degrees), library, limits)
