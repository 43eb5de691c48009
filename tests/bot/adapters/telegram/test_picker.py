"""The template keyboard: pages, callback data within 64 bytes, and data this bot did not make."""

from memeswap.bot.adapters.telegram import picker
from memeswap.bot.core.templates import TemplateInfo


def infos(count: int, scope: str = "global", builtin: bool = True) -> list[TemplateInfo]:
    return [TemplateInfo(f"t{i:02d}-" + "x" * 28, f"Template {i}", scope, builtin, f"t{i}") for i in range(count)]


def buttons(markup) -> list[str]:
    return [button.callback_data for row in markup.inline_keyboard for button in row]


def test_pages_and_callback_data():
    ours = [TemplateInfo("party", "Party", "telegram-chat--100", False, "telegram-chat--100/party"),
            TemplateInfo("t03-" + "x" * 28, "Our own t03", "telegram-chat--100", False, "x")]
    listed = infos(11) + ours
    markup = picker.keyboard(listed, "photo", 0, per_page=8)
    first = buttons(markup)
    last = buttons(picker.keyboard(listed, "face", 99, per_page=8))  # clamped to the last page
    assert all(len(data.encode()) <= 64 for data in first + last)
    assert first[:2] == ["photo:party", "photo:t03-" + "x" * 28]  # the chat's own first, one per name
    assert [b.text for b in markup.inline_keyboard[0]] == ["★ Party", "★ Our own t03"]
    assert len([d for d in first + last if not d.startswith(("photo-page", "face-page"))]) == 12
    assert first[-2:] == ["photo-page:0", "photo-page:1"]
    assert last[-2:] == ["face-page:0", "face-page:1"]
    single = buttons(picker.keyboard(infos(3), "photo", 0, per_page=8))
    assert not any("page" in data for data in single)


def test_parse_reads_only_what_the_bot_made():
    assert picker.parse("photo:bounce") == picker.Choice("photo", template="bounce")
    assert picker.parse("face-page:2") == picker.Choice("face", page=2)
    assert picker.parse("photo-page:0012") == picker.Choice("photo", page=12)
    for junk in (None, "", "photo:", "pick:bounce", "face-page:x", "other-page:1", "photo-pages:1",
                 "photo-page:²", "photo-page:١", "photo-page:-1", "photo-page:12345", "photo:../../x",
                 "photo:" + "a" * 33, "photo:Bounce", "photo:bounce\n", "photo:-x", "face-page:bounce",
                 "photo-x:bounce", "photo:b" + "é" * 40):
        assert picker.parse(junk) is None, junk
