# Hardening flags shared by every target (included by toolchains/<arch>/host.profile), rendered
# from toolchains/hardening.mk, their one definition. The architecture's own flags are picked by
# the host profile's directory name. The flags are part of the package id, so changing them rebuilds.
{%- set mk %}{% include "hardening.mk" %}{% endset %}
{%- set v = {} %}
{%- for line in mk.splitlines() if "=" in line and not line.startswith("#") %}
{%- set _ = v.update({line.split("=", 1)[0].strip(): line.split("=", 1)[1].split()}) %}
{%- endfor %}
{%- set arch = "aarch64" if "aarch64" in root_profile_name else "x86_64" %}
[conf]
tools.build:cflags={{ (v["HARDEN_CFLAGS"] + ["-fPIC"] + v["HARDEN_CFLAGS_" ~ arch]) | tojson }}
tools.build:sharedlinkflags={{ (v["HARDEN_LDFLAGS"] + v["HARDEN_SHARED_LDFLAGS"]) | tojson }}
tools.build:exelinkflags={{ (v["HARDEN_LDFLAGS"] + v["HARDEN_EXE_LDFLAGS"]) | tojson }}
tools.info.package_id:confs=["tools.build:cflags", "tools.build:sharedlinkflags", "tools.build:exelinkflags", "tools.build:compiler_executables"]
