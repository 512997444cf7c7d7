"""applicationHost.config + web.config merging, driven by tests/fixtures/parsers/iisconfig/<case>/.

Each case folder holds ``applicationHost.config`` (or names a shared conformance file with
``app_host_shared``), any web.config files, and ``expected.yml`` with checks on sites, pools and the
effective settings of URL paths. Add a folder to add a case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.errors import InputError
from toolkit.parsers.iisconfig import WebConfigText, effective_for, is_encrypted, parse_iis_config, secret_present

from parser_helpers import FIXTURES, SHARED_CONFORMANCE, case_dirs, check_expectations, load_yaml, shared_file

CASES = case_dirs("iisconfig")


def _load_case(case: Path):
    expected = load_yaml(case / "expected.yml")
    if "app_host_shared" in expected:
        app_host_path = shared_file(expected["app_host_shared"])
        label = app_host_path.name
    else:
        app_host_path = case / expected.get("app_host", "applicationHost.config")
        label = "applicationHost.config"
    web_configs = [
        WebConfigText(site=wc["site"], virtual_path=wc["virtual_path"], path=wc.get("path", wc["file"]),
                      text=(case / wc["file"]).read_text(encoding="utf-8"))
        for wc in expected.get("web_configs") or []
    ]
    config = parse_iis_config(app_host_path.read_text(encoding="utf-8-sig"), label, web_configs)
    return config, expected


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_iisconfig_case(case: Path) -> None:
    config, expected = _load_case(case)
    for site_check in expected.get("sites") or []:
        site = config.site(site_check["name"])
        assert site is not None, f"site {site_check['name']!r} missing"
        check_expectations(site, site_check.get("expect") or {}, f"{case.name} site {site.name}")
    if "site_names" in expected:
        assert [s.name for s in config.sites] == expected["site_names"]
    for pool_check in expected.get("pools") or []:
        pool = config.app_pool(pool_check["name"])
        assert pool is not None, f"pool {pool_check['name']!r} missing"
        check_expectations(pool, pool_check.get("expect") or {}, f"{case.name} pool {pool.name}")
    for eff in expected.get("effective") or []:
        settings = effective_for(config, eff["site"], eff["path"])
        check_expectations(settings, eff.get("expect") or {}, f"{case.name} {eff['site']}{eff['path']}")
        for key, line in (eff.get("deciding") or {}).items():
            source = settings.sources.get(key)
            assert (source.line if source else None) == line, f"{case.name} {eff['path']}: {key} decided by {source}"
        for url, handler_name in (eff.get("handler_for") or {}).items():
            handler = settings.handler_for(url)
            assert handler is not None and handler.name == handler_name, f"{url}: {handler}"
    if "config" in expected:
        check_expectations(config, expected["config"], f"{case.name} config")
    if "warnings_count" in expected:
        assert len(config.warnings) == expected["warnings_count"], config.warnings
    for fragment in expected.get("warnings") or []:
        assert any(fragment in w for w in config.warnings), f"no warning with {fragment!r}: {config.warnings}"
    rendered = repr(config)
    for secret in expected.get("absent_text") or []:
        assert secret not in rendered, f"{secret!r} leaked into the parsed config"


def test_effective_list_covers_every_configured_path() -> None:
    config, _ = _load_case(FIXTURES / "iisconfig" / "location-inheritance")
    paths = {(e.site, e.path) for e in config.effective}
    assert ("Default Web Site", "/") in paths
    assert ("Default Web Site", "/app") in paths
    assert ("Default Web Site", "/app/images") in paths
    assert ("Default Web Site", "/app/reports") in paths


def test_broken_application_host_raises_with_line() -> None:
    text = "<configuration>\n  <system.webServer>\n    <oops>\n  </system.webServer>\n</configuration>\n"
    with pytest.raises(InputError) as info:
        parse_iis_config(text, r"C:\Windows\System32\inetsrv\config\applicationHost.config")
    assert info.value.line == 4
    assert "applicationHost.config:4" in str(info.value)


def test_wrong_root_element_is_rejected() -> None:
    with pytest.raises(InputError, match="expected <configuration>"):
        parse_iis_config("<settings/>", "applicationHost.config")


def test_entity_expansion_in_application_host_is_refused() -> None:
    text = ('<?xml version="1.0"?><!DOCTYPE configuration [<!ENTITY a "aaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;">]><configuration>&b;</configuration>')
    with pytest.raises(InputError, match="unsafe XML"):
        parse_iis_config(text, "applicationHost.config")


def test_broken_web_config_becomes_a_warning_not_an_error() -> None:
    app_host = (FIXTURES / "iisconfig" / "defaults" / "applicationHost.config").read_text(encoding="utf-8")
    broken = WebConfigText("Default Web Site", "/app", r"D:\app\web.config", "<configuration>\n<system.webServer>\n")
    config = parse_iis_config(app_host, "applicationHost.config", [broken])
    assert len(config.sites) == 1
    assert any(r"D:\app\web.config" in w and "HTTP 500" in w for w in config.warnings)


def test_web_config_for_unknown_site_is_reported() -> None:
    app_host = (FIXTURES / "iisconfig" / "defaults" / "applicationHost.config").read_text(encoding="utf-8")
    stray = WebConfigText("Gone", "/", r"D:\gone\web.config", "<configuration/>")
    config = parse_iis_config(app_host, "applicationHost.config", [stray])
    assert any("Gone" in w for w in config.warnings)


@pytest.mark.parametrize("value, present", [
    ("[enc:AesProvider:57686f6120447564652c2049495320526f636b73:enc]", True),
    ("[enc:AesProvider::enc]", False),
    ("[enc:IISWASOnlyCngProvider::enc]", False),
    ("", False),
    (None, False),
    ("plain-text", True),
])
def test_secret_present(value, present) -> None:
    assert secret_present(value) is present


def test_is_encrypted() -> None:
    assert is_encrypted("[enc:IISCngProvider:abcd:enc]")
    assert not is_encrypted("IUSR")


def _iis_docs(name: str) -> str:
    folder = FIXTURES / "conformance" / "iis-config" / "iis-docs" / name
    return next(folder.glob("*.xml")).read_text(encoding="utf-8")


def test_iis_docs_fragments_in_a_server_config() -> None:
    """The configuration-reference samples (MIT) dropped into a minimal server config, as an admin would."""
    anonymous = _iis_docs("anonymousAuthentication")  # <security><authentication><anonymousAuthentication .../>
    contoso = _iis_docs("authentication")  # <location path="Contoso"> anonymous off, basic + windows on
    filters = _iis_docs("isapiFilters")  # a whole <configuration><system.webServer><isapiFilters>
    ext_protection = _iis_docs("windowsAuthentication-extendedProtection")  # <location path="Default Web Site">
    providers = _iis_docs("windowsAuthentication")  # <windowsAuthentication enabled="false"><providers>
    filter_block = filters.split("<system.webServer>", 1)[1].split("</system.webServer>", 1)[0]
    app_host = f"""<configuration>
  <system.applicationHost>
    <sites>
      <site name="Default Web Site" id="1"><application path="/"><virtualDirectory path="/" physicalPath="C:\\www" /></application></site>
      <site name="Contoso" id="2"><application path="/"><virtualDirectory path="/" physicalPath="C:\\contoso" /></application></site>
    </sites>
  </system.applicationHost>
  <system.webServer>
    {anonymous}
    {filter_block}
  </system.webServer>
  <location path=""><system.webServer><security><authentication>{providers}</authentication></security></system.webServer></location>
  {contoso}
  {ext_protection}
</configuration>"""
    config = parse_iis_config(app_host, "applicationHost.config")
    default_site = effective_for(config, "Default Web Site", "/")
    assert default_site.anonymous.user_name == "User1"
    assert default_site.anonymous.password_present is True
    assert "57686f61" not in repr(config)
    assert default_site.windows.enabled is True
    assert default_site.windows.extended_protection == "Allow"
    assert default_site.windows.providers == ("Negotiate", "NTLM")
    assert default_site.windows.providers_configured is True
    assert [f.name for f in default_site.isapi_filters] == ["SalesFilter"]
    contoso_site = effective_for(config, "Contoso", "/shop")
    assert contoso_site.anonymous.enabled is False
    assert contoso_site.anonymous.user_name == "User1"  # inherited from the server level
    assert contoso_site.basic.enabled is True and contoso_site.basic.default_logon_domain == "Contoso"
    assert contoso_site.windows.enabled is True
    assert contoso_site.windows.extended_protection == "None"


def test_allow_override_false_locks_like_override_mode_deny() -> None:
    app_host = (FIXTURES / "iisconfig" / "defaults" / "applicationHost.config").read_text(encoding="utf-8")
    app_host = app_host.replace("</configuration>", """
    <location path="Default Web Site" allowOverride="false">
        <system.webServer><security><authorization /></security></system.webServer>
    </location>
</configuration>""")
    web_config = WebConfigText("Default Web Site", "/", r"C:\inetpub\wwwroot\web.config",
                               "<configuration><system.webServer><security><authorization>"
                               "<add accessType='Deny' users='*'/></authorization></security></system.webServer>"
                               "</configuration>")
    config = parse_iis_config(app_host, "applicationHost.config", [web_config])
    assert effective_for(config, "Default Web Site", "/").authorization == ()
    assert any("authorization is locked" in w for w in config.warnings)


def test_unsafe_web_config_is_a_warning() -> None:
    app_host = (FIXTURES / "iisconfig" / "defaults" / "applicationHost.config").read_text(encoding="utf-8")
    evil = WebConfigText("Default Web Site", "/", r"C:\inetpub\wwwroot\web.config",
                         '<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]><configuration>&x;</configuration>')
    config = parse_iis_config(app_host, "applicationHost.config", [evil])
    assert any("unsafe XML" in w for w in config.warnings)
    assert "root:" not in repr(config)


def test_web_config_count_is_capped(monkeypatch) -> None:
    import toolkit.parsers.iisconfig as iisconfig

    monkeypatch.setattr(iisconfig, "MAX_WEB_CONFIGS", 2)
    app_host = (FIXTURES / "iisconfig" / "defaults" / "applicationHost.config").read_text(encoding="utf-8")
    configs = [WebConfigText("Default Web Site", f"/d{i}", f"web{i}.config", "<configuration/>") for i in range(5)]
    config = iisconfig.parse_iis_config(app_host, "applicationHost.config", configs)
    assert any("only the first 2 read" in w for w in config.warnings)
    assert ("Default Web Site", "/d4") not in {(e.site, e.path) for e in config.effective}


def test_bytes_input_with_utf16_bom() -> None:
    app_host = (FIXTURES / "iisconfig" / "defaults" / "applicationHost.config").read_text(encoding="utf-8")
    data = app_host.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    config = parse_iis_config(data, "applicationHost.config")
    assert config.sites[0].name == "Default Web Site"


@pytest.mark.parametrize("url", ["/app/reports/x.aspx?id=1", "/App/./Reports/", "/app/re%70orts/x", "app//reports"])
def test_url_forms_resolve_to_the_same_path(url: str) -> None:
    config, _ = _load_case(FIXTURES / "iisconfig" / "location-inheritance")
    assert effective_for(config, "default web site", url).path == "/app/reports"


def test_copied_conformance_files_match_their_shared_originals() -> None:
    """The copies under tests/fixtures/parsers/conformance are byte-identical to the vetted samples."""
    copies = [p for p in (FIXTURES / "conformance").rglob("*") if p.is_file() and p.name != "SOURCES.md"]
    assert len(copies) == 10
    compared = 0
    for copy in copies:
        relative = copy.relative_to(FIXTURES / "conformance")
        original = SHARED_CONFORMANCE / relative
        if original.is_file():
            assert original.read_bytes() == copy.read_bytes(), relative
            compared += 1
    if compared == 0:
        pytest.skip("../shared/conformance not available")
