"""The report as a document, and its Markdown and HTML renderings.

A report is a list of :class:`Section`; each holds :class:`Paragraph`,
:class:`Table` and :class:`Image` blocks. :func:`render_markdown` and
:func:`render_html` render one list, so both files always hold the same
content.
"""
import base64
import html
from typing import NamedTuple, Sequence, Union

from tsneviz.rundir import Run


class Paragraph(NamedTuple):
    text: str


class Table(NamedTuple):
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


class Image(NamedTuple):
    file: str  # a PNG in the run directory, by name
    alt: str


class Section(NamedTuple):
    title: str
    blocks: Sequence


def _md_cell(text: str) -> str:
    return str(text).replace('|', '\\|').replace('\n', ' ')


def render_markdown(title: str, sections: Sequence[Section]) -> str:
    """Markdown of ``sections``; images by their relative file name."""
    lines = [f'# {title}', '']
    for section in sections:
        lines += [f'## {section.title}', '']
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines += [block.text, '']
            elif isinstance(block, Image):
                lines += [f'![{block.alt}]({block.file})', '']
            elif isinstance(block, Table):
                lines.append('| ' + ' | '.join(_md_cell(h) or ' '
                                                for h in block.headers) + ' |')
                lines.append('|' + '---|' * len(block.headers))
                lines += ['| ' + ' | '.join(_md_cell(c) for c in row) + ' |'
                          for row in block.rows]
                lines.append('')
    return '\n'.join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1000px;
       margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd;
       padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #f3f3f3; }
td:not(:first-child) { font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; }
p.caption { font-family: monospace; margin-bottom: 0; }
"""


def render_html(title: str, sections: Sequence[Section],
                run_dir: Union[str, Run]) -> str:
    """Self-contained HTML of ``sections``: images inlined, no URLs.

    Args:
        title (str): The page title.
        sections (Sequence[Section]): What the page shows.
        run_dir (str | Run): The run whose PNGs the images name.
    """
    run = run_dir if isinstance(run_dir, Run) else Run(run_dir)
    esc = html.escape
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
           f'<title>{esc(title)}</title>', f'<style>{_CSS}</style>',
           '</head><body>', f'<h1>{esc(title)}</h1>']
    for section in sections:
        out.append(f'<h2>{esc(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, Paragraph):
                out.append(f'<p>{esc(block.text)}</p>')
            elif isinstance(block, Image):
                data = base64.b64encode(
                    run.read_bytes(block.file)).decode('ascii')
                out.append(f'<img alt="{esc(block.alt)}" '
                           f'src="data:image/png;base64,{data}">')
            elif isinstance(block, Table):
                out.append('<table>')
                if any(block.headers):
                    out.append('<tr>' + ''.join(f'<th>{esc(str(h))}</th>'
                                                for h in block.headers)
                               + '</tr>')
                out += ['<tr>' + ''.join(f'<td>{esc(str(c))}</td>'
                                         for c in row) + '</tr>'
                        for row in block.rows]
                out.append('</table>')
    out.append('</body></html>')
    return '\n'.join(out)
