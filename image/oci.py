#!/usr/bin/env python3
"""Writes an OCI image archive from the final stage of a Dockerfile, without Docker.

    oci.py --dockerfile Dockerfile --context DIR [--stage NAME=DIR ...] [--build-arg K=V ...]
           [--platform linux/ARCH] --tag REF --out IMAGE.tar

The Dockerfile is the one definition of the image: `docker build` uses it where a Docker engine
runs, and this script builds the same image where none does (the local node's containerd imports
the archive with `ctr images import`). Only what a final stage `FROM scratch` needs is understood:

    FROM scratch
    COPY [--from=STAGE] [--chmod=MODE] SRC DEST    (files only; --from=STAGE reads SRC below
                                                     DIR, given as that stage's root by
                                                     --stage STAGE=DIR)
    USER, EXPOSE, ENTRYPOINT [...], CMD [...], LABEL k=v, ENV k=v, WORKDIR,
    ARG NAME[=DEFAULT] (set with --build-arg NAME=VALUE; $NAME and ${NAME} are replaced in
    LABEL and ENV values, as Docker does)

    oci.py index --tag REF --out IMAGE.tar PLATFORM.tar ...

joins single-platform archives written by the first form into one multi-platform image: an
image index with one manifest per platform (image/release.sh pushes it with `skopeo copy --all`).

Anything else in that stage is an error, so the two paths cannot silently disagree. The archive
is reproducible: the same inputs give the same bytes, hence the same image digest. Files are
owned by root and not writable by the image's user. Prints `REF DIGEST` of the manifest.
"""

import argparse
import hashlib
import io
import json
import os
import platform
import re
import shlex
import sys
import tarfile

EPOCH = "1970-01-01T00:00:00Z"


def fail(message):
    sys.exit(f"oci.py: {message}")


def final_stage(path):
    """Instructions (keyword, argument text) of the last stage, continuation lines joined."""
    lines, pending = [], ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            lines.append(pending + line)
            pending = ""
    stage = []
    for line in lines:
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stage = []
        stage.append((keyword.upper(), rest.strip()))
    if not stage or stage[0][0] != "FROM":
        fail(f"{path}: no FROM")
    return stage


def key_values(text, args):
    pairs = {}
    for item in shlex.split(text):
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"expected key=value, got {item!r}")
        pairs[key] = substitute(value, args)
    return pairs


def substitute(value, args):
    def arg(match):
        name = match.group(1) or match.group(2)
        if name not in args:
            fail(f"${name} is not an ARG of the final stage")
        return args[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", arg, value)


def parse(path, context, stages, build_args):
    """The image config and the files of the layer, from the Dockerfile's final stage."""
    stage = final_stage(path)
    base = stage[0][1].split()
    if base[0] != "scratch":
        fail(f"{path}: the final stage must be FROM scratch (it is FROM {base[0]})")
    config = {"Env": [], "Labels": {}, "ExposedPorts": {}, "WorkingDir": "/"}
    files, args = [], {}
    for keyword, rest in stage[1:]:
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = build_args.get(name, default)
        elif keyword == "COPY":
            words = shlex.split(rest)
            source_dir, mode = context, 0o555
            while words and words[0].startswith("--"):
                flag, _, value = words.pop(0)[2:].partition("=")
                if flag == "from":
                    if value not in stages:
                        fail(f"COPY --from={value}: pass --stage {value}=DIR")
                    source_dir = stages[value]
                elif flag == "chmod":
                    mode = int(value, 8)
                else:
                    fail(f"COPY --{flag} is not supported")
            if len(words) != 2:
                fail(f"COPY needs exactly one source and one destination: {rest}")
            src, dest = words
            full = os.path.join(source_dir, src.lstrip("/"))
            if not os.path.isfile(full):
                fail(f"COPY source {full} is not a file")
            files.append((full, dest.lstrip("/"), mode))
        elif keyword == "USER":
            config["User"] = rest
        elif keyword == "EXPOSE":
            for port in rest.split():
                config["ExposedPorts"][port if "/" in port else port + "/tcp"] = {}
        elif keyword in ("ENTRYPOINT", "CMD"):
            value = json.loads(rest)
            if not isinstance(value, list):
                fail(f"{keyword} must use the JSON (exec) form")
            config["Entrypoint" if keyword == "ENTRYPOINT" else "Cmd"] = value
        elif keyword == "LABEL":
            config["Labels"].update(key_values(rest, args))
        elif keyword == "ENV":
            config["Env"] += [f"{k}={v}" for k, v in key_values(rest, args).items()]
        elif keyword == "WORKDIR":
            config["WorkingDir"] = rest
        else:
            fail(f"{keyword} is not supported in the final stage")
    return config, files


def layer_tar(files):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = set()
        for _, dest, _ in files:
            parts = dest.split("/")[:-1]
            dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for src, dest, mode in sorted(files, key=lambda f: f[1]):
            with open(src, "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(dest)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_archive(path, tag, top, blobs):
    """An OCI layout archive: index.json naming `top` (a descriptor) as `tag`, and the blobs."""
    top = dict(top)
    top["annotations"] = {
        "io.containerd.image.name": tag,
        "org.opencontainers.image.ref.name": tag.rsplit(":", 1)[-1],
    }
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [top]},
        sort_keys=True,
    ).encode()
    tmp = path + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))

        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for blob in sorted(blobs, key=digest):
            add("blobs/sha256/" + digest(blob).split(":")[1], blob)
    os.replace(tmp, path)


def join_platforms(argv):
    """`oci.py index`: one image index over the platform images of several archives."""
    p = argparse.ArgumentParser(prog="oci.py index")
    p.add_argument("--tag", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("archives", nargs="+")
    a = p.parse_args(argv)
    blobs, manifests = {}, []
    for archive in a.archives:
        with tarfile.open(archive) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        for entry in json.loads(files["index.json"])["manifests"]:
            if entry["mediaType"] != "application/vnd.oci.image.manifest.v1+json":
                fail(f"{archive}: expected one image manifest, found {entry['mediaType']}")
            blob = lambda d: files["blobs/sha256/" + d.split(":")[1]]
            manifest = json.loads(blob(entry["digest"]))
            config = json.loads(blob(manifest["config"]["digest"]))
            platform_ = {"architecture": config["architecture"], "os": config["os"]}
            if any(m["platform"] == platform_ for m in manifests):
                fail(f"{archive}: a second image for {platform_['os']}/{platform_['architecture']}")
            manifests.append({k: entry[k] for k in ("mediaType", "digest", "size")} | {"platform": platform_})
            for name, data in files.items():
                if name.startswith("blobs/"):
                    blobs[name] = data
    manifests.sort(key=lambda m: m["platform"]["architecture"])
    image_index = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests},
        sort_keys=True,
    ).encode()
    top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest(image_index), "size": len(image_index)}
    write_archive(a.out, a.tag, top, list(blobs.values()) + [image_index])
    print(a.tag, digest(image_index))


def main():
    if sys.argv[1:2] == ["index"]:
        join_platforms(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dockerfile", required=True)
    p.add_argument("--context", default=".")
    p.add_argument("--stage", action="append", default=[], metavar="NAME=DIR")
    p.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--platform", help="linux/amd64 or linux/arm64 (default: this machine's)")
    p.add_argument("--tag", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    stages = dict(s.split("=", 1) for s in a.stage)
    build_args = dict(s.split("=", 1) for s in a.build_arg)
    config, files = parse(a.dockerfile, a.context, stages, build_args)
    # The binaries come from this machine's build (image/build-binary.sh builds natively).
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    os_name, _, architecture = (a.platform or f"linux/{machine}").partition("/")
    layer = layer_tar(files)
    image_config = json.dumps(
        {
            "architecture": architecture,
            "os": os_name,
            "created": EPOCH,
            "config": {k: v for k, v in config.items() if v or k == "WorkingDir"},
            "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
            "history": [{"created": EPOCH, "created_by": f"image/oci.py {os.path.basename(a.dockerfile)}"}],
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(image_config),
                "size": len(image_config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest(layer),
                    "size": len(layer),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest), "size": len(manifest)}
    write_archive(a.out, a.tag, top, [layer, image_config, manifest])
    print(a.tag, digest(manifest))


if __name__ == "__main__":
    main()
