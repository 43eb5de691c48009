"""The swappers memeswap knows, by the name `MEMESWAP_SWAPPER` and `--swapper` use.

Adding a swapper is one new module with a class that follows `base.Swapper` (its `name`,
the `required_models` it needs from the model store and a `from_models` constructor) and
one line here. `auto` takes the first swapper, in this order, whose models all verify.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memeswap.inference.swappers.base import Swapper

# name -> "module:class", imported only when chosen (the learned one loads onnx)
SWAPPERS: dict[str, str] = {
    "inswapper": "memeswap.inference.swappers.inswapper:InSwapper",
    "classic": "memeswap.inference.swappers.classic:ClassicSwapper",
}


def swapper_class(name: str) -> type[Swapper]:
    try:
        module, _, attribute = SWAPPERS[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown swapper {name!r}; choose auto or one of {', '.join(SWAPPERS)}") from None
    return getattr(import_module(module), attribute)
