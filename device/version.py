"""The installed package's version, for `--version`, status messages and Home Assistant's device block."""

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("soundsentry")
    except PackageNotFoundError:
        return "0+unknown"
