"""The package's layout: no function over 100 lines of code.

Lines of code exclude docstrings, comments and blank lines (the counter is
tested on a probe file).
"""

import ast
import io
import tokenize
from pathlib import Path

import skdistill

_LAYOUT_SKIP = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
    tokenize.ENCODING,
}


def code_lines_per_function(path):
    """``{qualified name: lines of code}``, without docstrings, comments or blanks."""
    src = Path(path).read_text()
    tree = ast.parse(src)
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type not in _LAYOUT_SKIP:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    scopes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(tree):
        if isinstance(node, scopes) and ast.get_docstring(node) is not None:
            doc = node.body[0]
            lines.difference_update(range(doc.lineno, doc.end_lineno + 1))
    counts = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}."
                if not isinstance(child, ast.ClassDef):
                    span = range(child.lineno, child.end_lineno + 1)
                    counts[name[:-1]] = len(lines.intersection(span))
            visit(child, name)

    visit(tree, "")
    return counts


def test_code_line_counter_counts_only_code(tmp_path):
    src = '''def f(x):
    """Doc.

    More doc.
    """
    # a comment

    y = (x +
         1)
    return y
'''
    path = tmp_path / "probe.py"
    path.write_text(src)
    assert code_lines_per_function(path) == {"f": 4}


def test_no_function_over_100_lines_of_code():
    root = Path(skdistill.__file__).parent
    long = {
        f"{path.relative_to(root)}::{name}": n
        for path in sorted(root.rglob("*.py"))
        for name, n in code_lines_per_function(path).items()
        if n > 100
    }
    assert not long


if __name__ == "__main__":  # python tests/test_layout.py: the longest functions
    root = Path(skdistill.__file__).parent
    rows = sorted(
        (
            (n, f"{path.relative_to(root)}::{name}")
            for path in sorted(root.rglob("*.py"))
            for name, n in code_lines_per_function(path).items()
        ),
        reverse=True,
    )
    for n, name in rows[:10]:
        print(f"{n:5d}  {name}")
