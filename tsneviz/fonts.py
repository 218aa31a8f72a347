"""Class names in any script on matplotlib's figures.

matplotlib's default font (DejaVu Sans) has no Chinese, Japanese or Korean
characters: a class named ``日本`` is drawn as two boxes, with one warning
per character. matplotlib falls back font by font along ``font.family``
(since 3.6), so :func:`cover_glyphs` adds an installed font that has the
missing characters to the end of that list; where none is installed it
says once, in one line, what will not render and how to install a font.
matplotlib is imported only when a text needs a character beyond ASCII.
"""
import functools
import warnings
from typing import FrozenSet, Iterable, List, Optional

#: Families tried first, in this order: the common CJK fonts. Any other
#: installed font that has the characters is found too, only later.
PREFERRED = ('Noto Sans CJK JP', 'Noto Sans CJK SC', 'Noto Sans CJK TC',
             'Noto Sans CJK KR', 'Source Han Sans', 'WenQuanYi Zen Hei',
             'WenQuanYi Micro Hei', 'Droid Sans Fallback', 'IPAGothic',
             'IPAexGothic', 'Unifont')

#: What the one warning suggests installing.
INSTALL_HINT = ('install a font that has them, e.g. fonts-noto-cjk '
                '(Debian, Ubuntu: apt-get install fonts-noto-cjk) for '
                'Chinese, Japanese and Korean')

_warned = False


def cover_glyphs(texts: Iterable[object]) -> Optional[str]:
    """Let matplotlib draw every character of ``texts``, else warn once.

    Call it with the class names before a figure that shows them is made:
    the texts of a figure take their font when they are created.

    Args:
        texts (Iterable): The strings to be drawn (class names); other
            objects are taken as ``str(obj)``.

    Returns:
        str | None: The family added to ``font.family``, or None when none
        was needed (an earlier call may have added it) or none is
        installed.

    Examples:
        >>> cover_glyphs(['cat', 'dog'])  # ASCII: nothing to do
        >>> cover_glyphs(['日本', '中国'])  # with fonts-noto-cjk
        'Noto Sans CJK JP'
    """
    wanted = frozenset(c for text in texts for c in str(text)
                       if ord(c) > 127 and c.isprintable())
    if not wanted:
        return None
    from matplotlib import rcParams

    families = list(rcParams['font.family'])
    missing = wanted - _covered(tuple(_font_paths(families)))
    if not missing:
        return None
    family = _font_with(missing)
    if family is not None:
        families.append(family)
        rcParams['font.family'] = families
        missing -= _covered(tuple(_font_paths(families)))
    if missing:
        _warn_once(missing)
    return family


def _font_paths(families: List[str]) -> List[str]:
    """The font file each family of ``font.family`` resolves to."""
    from matplotlib import font_manager

    paths = []
    for family in families:
        try:
            # a list: a lone string is read as a fontconfig pattern
            paths.append(font_manager.findfont(
                font_manager.FontProperties(family=[family]),
                fallback_to_default=False))
        except ValueError:  # not installed: matplotlib skips it too
            continue
    return paths


@functools.lru_cache(maxsize=None)
def _charset(path: str) -> FrozenSet[str]:
    """The characters a font file has a glyph for."""
    from matplotlib.ft2font import FT2Font
    try:
        return frozenset(chr(c) for c in FT2Font(str(path)).get_charmap())
    except (OSError, RuntimeError, ValueError):  # unreadable: no glyphs
        return frozenset()


def _covered(paths: tuple) -> FrozenSet[str]:
    return frozenset().union(*(_charset(p) for p in paths))


def _font_with(missing: FrozenSet[str]) -> Optional[str]:
    """The installed family with the most of ``missing``, preferred first.

    None when no font has any of them.
    """
    from matplotlib import font_manager

    rank = {name: i for i, name in enumerate(PREFERRED)}
    # matplotlib's Last Resort font maps every character to a box
    fonts = sorted({(f.name, f.fname) for f in
                    font_manager.fontManager.ttflist
                    if not f.name.startswith('Last Resort')},
                   key=lambda f: (rank.get(f[0], len(rank)), f))
    best, best_count = None, 0
    for name, path in fonts:
        count = len(missing & _charset(path))
        if count == len(missing):
            return name
        if count > best_count:
            best, best_count = name, count
    return best


def _warn_once(missing: FrozenSet[str]) -> None:
    """One line, once per process; matplotlib's own per-glyph warnings
    would only repeat it."""
    global _warned
    if _warned:
        return
    _warned = True
    from mmengine.logging import MMLogger
    sample = ''.join(sorted(missing)[:5])
    MMLogger.get_current_instance().warning(
        f'class names with characters no installed font has (e.g. '
        f'{sample!r}) will show as boxes in the plots; {INSTALL_HINT}')
    warnings.filterwarnings('ignore', message=r'Glyph \d+ .*missing from '
                            r'font\(s\)')
