#!/usr/bin/env python3
"""Checks that a shared libswiotlb exports every function of the public interface.

The public interface is what the entry headers name: the headers that
<swiotlb/swiotlb.h> and <swiotlb/iova.h> include directly (and
<swiotlb/trace.h>, when it is installed), and the C API <swiotlb.h>. A
function declared there and defined out of line must be in the library's
dynamic symbol table, or a program that calls it links against the static
library and fails against the shared one ("undefined reference"). The
library is built with hidden visibility, so a function is exported only
when it or its class is marked SWIOTLB_API; this check finds the ones that
are not.

How: clang dumps the declarations of namespace swiotlb (and the C API) as
JSON, seen through the installed headers; every function, member function,
constructor and destructor declared in a public header that is not defined
there (inline, constexpr, a template, deleted, defaulted, pure virtual),
not private and not in a class marked hidden (SWIOTLB_LOCAL) must appear,
by its mangled name, in `nm -D --defined-only` of the library.

Usage: scripts/check-exports.py INCLUDE_DIR LIBRARY [CLANG]
  INCLUDE_DIR  the installed include directory (holding swiotlb.h)
  LIBRARY      the installed libswiotlb.so
  CLANG        the clang++ to parse with (default clang++-14, then clang++)
Exits 0 when every function is exported, 1 with the list otherwise, 2 on a
usage or tool error.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ENTRY_HEADERS = ["swiotlb/swiotlb.h", "swiotlb/iova.h", "swiotlb/trace.h"]
C_API_HEADER = "swiotlb.h"

# Declarations whose bodies are not in the library: templates are
# instantiated by their user, the rest are defined by the compiler.
TEMPLATE_KINDS = {
    "FunctionTemplateDecl",
    "ClassTemplateDecl",
    "ClassTemplateSpecializationDecl",
    "ClassTemplatePartialSpecializationDecl",
}
FUNCTION_KINDS = {
    "FunctionDecl",
    "CXXMethodDecl",
    "CXXConstructorDecl",
    "CXXDestructorDecl",
    "CXXConversionDecl",
}


def fail(message):
    print(f"check-exports: {message}", file=sys.stderr)
    sys.exit(2)


def public_headers(include_dir):
    """The installed headers of the public interface, as absolute paths."""
    headers = {os.path.realpath(os.path.join(include_dir, C_API_HEADER))}
    include = re.compile(r'^\s*#\s*include\s*"(swiotlb/[^"]+)"')
    for entry in ENTRY_HEADERS:
        path = os.path.join(include_dir, entry)
        if not os.path.exists(path):
            continue
        headers.add(os.path.realpath(path))
        with open(path, encoding="utf-8") as text:
            for line in text:
                match = include.match(line)
                if match:
                    headers.add(os.path.realpath(os.path.join(include_dir, match.group(1))))
    return headers


def dump_declarations(clang, include_dir, headers):
    """clang's JSON dump of every declaration of namespace swiotlb and of the
    C API's functions, as a list of top-level nodes."""
    with tempfile.NamedTemporaryFile("w", suffix=".cc", delete=False) as unit:
        for header in sorted(headers):
            unit.write(f'#include "{header}"\n')
        name = unit.name
    try:
        # The filter matches the qualified names that contain "swiotlb":
        # namespace swiotlb and the C API's swiotlb_ functions and types.
        result = subprocess.run(
            [clang, "-std=c++20", "-fsyntax-only", f"-I{include_dir}", "-Xclang",
             "-ast-dump=json", "-Xclang", "-ast-dump-filter=swiotlb", name],
            capture_output=True, text=True, check=False)
    finally:
        os.unlink(name)
    if result.returncode != 0:
        fail(f"{clang} cannot parse the public headers:\n{result.stderr}")
    decoder = json.JSONDecoder()
    nodes, text, at = [], result.stdout, 0
    while True:
        start = text.find("{", at)
        if start < 0:
            return nodes
        node, at = decoder.raw_decode(text, start)
        nodes.append(node)


class Walker:
    """Walks the dump in the order clang wrote it. clang names a location's
    file only where it differs from the previous location written, so the
    file of each declaration is the last one named before it."""

    def __init__(self, headers):
        self.headers = headers
        self.file = None
        self.declared = set()  # mangled names declared in a public header only
        self.defined = set()  # mangled names with a body in a header

    def note_location(self, location):
        if not isinstance(location, dict):
            return None
        for key in ("spellingLoc", "expansionLoc"):
            if key in location:
                self.note_location(location[key])
        if "file" in location:
            self.file = os.path.realpath(location["file"])
        return self.file

    def walk(self, node, hidden=False, in_template=False, private=False):
        kind = node.get("kind")
        file = self.note_location(node.get("loc"))
        if "range" in node:
            self.note_location(node["range"].get("begin"))
            self.note_location(node["range"].get("end"))
        inner = node.get("inner", [])
        is_record = kind in ("CXXRecordDecl", "ClassTemplateSpecializationDecl")
        if is_record:
            hidden = hidden or any(
                child.get("kind") == "VisibilityAttr" and child.get("visibility") == "hidden"
                for child in inner)
        if kind in TEMPLATE_KINDS:
            in_template = True
        if kind in FUNCTION_KINDS and "mangledName" in node:
            self.note_function(node, file, hidden or private, in_template)
        # A class's members are private until an access specifier says
        # otherwise, a struct's public. A private member is the class's own
        # business: a consumer can call it only through inline code of the
        # header, which is a case this check does not look for.
        access = "private" if node.get("tagUsed") == "class" else "public"
        for child in inner:
            if not isinstance(child, dict):
                continue
            if child.get("kind") == "AccessSpecDecl":
                access = child.get("access", access)
                continue
            self.walk(child, hidden, in_template, is_record and access == "private")

    def note_function(self, node, file, hidden, in_template):
        mangled = node["mangledName"]
        has_body = any(child.get("kind") == "CompoundStmt" for child in node.get("inner", []))
        if (has_body or node.get("inline") or node.get("constexpr")
                or node.get("explicitlyDefaulted") or node.get("explicitlyDeleted")):
            self.defined.add(mangled)
            return
        if (in_template or hidden or node.get("isImplicit") or node.get("pure")
                or file not in self.headers):
            return
        self.declared.add(mangled)


def exported_symbols(library):
    result = subprocess.run(["nm", "-D", "--defined-only", library], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        fail(f"nm cannot read {library}:\n{result.stderr}")
    names = set()
    for line in result.stdout.splitlines():
        fields = line.split()
        if fields:
            names.add(fields[-1].split("@")[0])
    return names


def demangle(names):
    result = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True,
                            text=True, check=False)
    return result.stdout.splitlines() if result.returncode == 0 else names


def main():
    if len(sys.argv) not in (3, 4):
        fail("usage: check-exports.py INCLUDE_DIR LIBRARY [CLANG]")
    include_dir, library = sys.argv[1], sys.argv[2]
    clang = sys.argv[3] if len(sys.argv) == 4 else (
        shutil.which("clang++-14") or shutil.which("clang++"))
    if not clang:
        fail("no clang++ to parse the headers with")
    if not os.path.isfile(os.path.join(include_dir, C_API_HEADER)):
        fail(f"{include_dir} holds no {C_API_HEADER}")
    headers = public_headers(include_dir)
    walker = Walker(headers)
    for node in dump_declarations(clang, include_dir, headers):
        walker.file = None
        walker.walk(node)
    exported = exported_symbols(library)
    required = sorted(walker.declared - walker.defined)
    if not required:
        fail("found no out-of-line function in the public headers (is the dump empty?)")
    missing = [name for name in required if name not in exported]
    if missing:
        print(f"{library} does not export {len(missing)} function(s) of the public headers "
              "(mark them SWIOTLB_API):", file=sys.stderr)
        for readable in demangle(missing):
            print(f"  {readable}", file=sys.stderr)
        return 1
    print(f"  {len(required)} out-of-line functions of {len(headers)} public headers, "
          "all exported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
