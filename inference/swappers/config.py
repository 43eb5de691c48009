"""What the settings say about swapping (no model or array code: settings import it)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class SwapperConfig:
    """What the settings say about swapping, for whichever swapper is built."""

    max_selfie_yaw_degrees: float = 30.0  # a selfie turned further is refused (the classic swapper)
    tone_balance: float = 0.8  # 1 keeps the selfie's skin tone, 0 takes the template's
    onnx_provider: str = "auto"
    batch_size: int = 16  # most faces per model call (learned swappers)
    mouth_mask: bool = False
