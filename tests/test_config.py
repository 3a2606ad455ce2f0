"""params.yaml: typed settings; a bad file fails fast naming the key."""

import copy

import numpy as np
import pytest
import yaml

from fdassim.config import load, parse
from fdassim.errors import ConfigError

GOOD = {
    "model": {"name": "lorenz96", "options": {"n": 40, "F": 8.0, "dt": 0.05}},
    "ensemble": {"size": 20},
    "observations": {"field": "x", "every": 2, "std": 1.0},
    "filter": {"scheme": "etkf"},
    "inflation": [{"multiplicative": {"lam": 1.02}}],
    "run": {"cycles": 10, "interval": 0.05, "seed": 3},
    "output": {"path": "run.h5"},
}


def changed(path, value):
    d = copy.deepcopy(GOOD)
    *keys, last = path.split(".")
    node = d
    for k in keys:
        node = node[k]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return d


def test_config_good_settings_build_every_object():
    s = parse(GOOD)
    assert s.ensemble.size == 20 and s.run.seed == 3
    assert type(s.make_scheme()).__name__ == "ETKF"
    assert type(s.make_model()).__name__ == "Lorenz96"
    assert s.make_inflation().lam == 1.02


@pytest.mark.parametrize("path, value, match", [
    pytest.param("ensemble.sise", 20, r"ensemble: unknown key 'sise'; allowed keys are: size, ranks_per_member",
                 id="unknown-key"),
    pytest.param("ensemble.size", -5, r"ensemble.size: must be at least 2, got -5", id="negative-size"),
    pytest.param("ensemble.size", "20", r"ensemble.size: expected an integer, got '20'", id="size-string"),
    pytest.param("ensemble.size", 20.5, r"ensemble.size: expected an integer", id="size-float"),
    pytest.param("run.twin", "False", r"run.twin: expected true or false \(unquoted\), got 'False'",
                 id="quoted-bool"),
    pytest.param("run.cycles", KeyError, r"run.cycles: required key is missing", id="missing-key"),
    pytest.param("observations.file", "no/such/obs.npz", r"observations.file: no such file 'no/such/obs.npz'",
                 id="missing-obs-file"),
    pytest.param("observations.std", 0.0, r"observations.std: must be positive", id="zero-std"),
    pytest.param("filter.scheme", "etfk", r"filter.scheme: 'etfk' is not known; choose one of enkf, etkf",
                 id="unknown-scheme"),
    pytest.param("filter.options", {"infl": 1.0}, r"filter.options: unknown key 'infl'", id="bad-scheme-option"),
    pytest.param("model.options", {"F": "eight"}, r"model.options.F: expected a number, got 'eight'",
                 id="bad-model-option"),
    pytest.param("inflation", [{"multiplicative": {"lam": 0.5}}],
                 r"inflation\[0\].multiplicative.lam: must be a finite number >= 1, got 0.5", id="bad-inflation-value"),
    pytest.param("inflation", [{"rtps": {"alpha": 1.5}}],
                 r"inflation\[0\].rtps.alpha: must be a finite number >= 0 and <= 1, got 1.5", id="bad-rtps-value"),
    pytest.param("filter", {"scheme": "enkf", "options": {"covariance": "ensemble", "truncation": 1.5}},
                 r"filter.options.truncation: must be a finite number > 0 and <= 1, got 1.5", id="bad-scheme-value"),
    pytest.param("filter", {"scheme": "enkf_n", "options": {"eps_N": -1.0}},
                 r"filter.options.eps_N: must be a finite number > 0, got -1.0", id="bad-enkf-n-value"),
    pytest.param("inflation", [{"multiplikative": {"lam": 1.1}}], r"inflation\[0\]: 'multiplikative' is not known",
                 id="unknown-inflation"),
    pytest.param("filter", {"scheme": "enkf", "options": {"covariance": "exakt"}},
                 r"filter.options.covariance: 'exakt' is not allowed; choose one of 'exact', 'ensemble'",
                 id="unknown-enum-value"),
    pytest.param("filter", {"scheme": "enkf", "options": {"covariance": "exact", "truncation": 0.99}},
                 r"filter.options: truncation=0.99 is only used with covariance=InnovationCovariance.ENSEMBLE",
                 id="option-not-used"),
])
def test_config_bad_settings_name_the_key(path, value, match):
    with pytest.raises(ConfigError, match=match):
        parse(changed(path, value))


def test_config_enum_option_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"filter.options.innovations: 'randm' is not allowed; choose one of"):
        parse(changed("filter", {"scheme": "enkf", "options": {"innovations": "randm"}}))


@pytest.mark.parametrize("options, covariance, truncation", [
    pytest.param({}, "EXACT", None, id="default"),
    pytest.param({"covariance": "exact"}, "EXACT", None, id="value"),
    pytest.param({"covariance": "ENSEMBLE", "truncation": 0.99}, "ENSEMBLE", 0.99, id="name"),
    pytest.param({"covariance": "ensemble", "project": True, "truncation": 1}, "ENSEMBLE", 1.0, id="int-truncation"),
])
def test_config_enkf_covariance_option(options, covariance, truncation):
    scheme = parse(changed("filter", {"scheme": "enkf", "options": options})).make_scheme()
    assert scheme.covariance.name == covariance and scheme.truncation == truncation


def test_config_load_reads_yaml_and_reports_bad_yaml(tmp_path):
    good = tmp_path / "params.yaml"
    good.write_text(yaml.safe_dump(GOOD))
    assert load(str(good)).filter.scheme == "etkf"
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(str(bad))
    with pytest.raises(ConfigError, match="no settings file"):
        load(str(tmp_path / "absent.yaml"))


def test_config_observation_file_is_accepted_when_present(tmp_path):
    f = tmp_path / "obs.npz"
    np.savez(f, y=np.zeros((10, 20)))
    s = parse(changed("observations.file", str(f)))
    assert s.observations.file == str(f)


def test_config_nested_localization_options_from_yaml():
    s = parse(changed("filter", {"scheme": "eakf", "options": {"localization": {"radius": 4.0, "periodic": [40.0]}}}))
    loc = s.make_scheme().localization
    assert loc.radius == 4.0 and tuple(loc.periodic) == (40.0,)
    s = parse(changed("filter", {"scheme": "lenkf", "options": {"localization": {"rule": "noise"}}}))
    assert type(s.make_scheme().localization).__name__ == "AdaptiveLocalization"
    with pytest.raises(ConfigError, match=r"filter.options.localization: .* is none of Localization \| "
                                          r"AdaptiveLocalization(.|\n)*unknown key 'radios'"):
        parse(changed("filter", {"scheme": "lenkf", "options": {"localization": {"radios": 4.0}}}))


def test_config_resolved_lists_defaults_and_built_objects():
    text = parse(GOOD).resolved()
    d = yaml.safe_load(text)
    assert d["ensemble"]["ranks_per_member"] is None and d["run"]["twin"] is True  # defaults filled in
    assert d["built"]["scheme"].startswith("ETKF(") and "lam=1.02" in d["built"]["inflation"]


def test_config_ranks_per_member_split_only_when_ranks_outnumber_members():
    from fdassim.ensemble import auto_ranks_per_member

    assert parse(GOOD).ensemble.ranks_per_member is None  # chosen at run time
    assert [auto_ranks_per_member(P, 5) for P in (1, 2, 4, 5, 6, 8, 12, 7)] == [1, 1, 1, 1, 2, 2, 3, 7]
    with pytest.raises(ConfigError, match="ensemble.ranks_per_member: must be at least 1, got 0"):
        parse(changed("ensemble.ranks_per_member", 0))


def test_config_duplicate_yaml_key_names_the_key_and_lines(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text(yaml.safe_dump(GOOD, sort_keys=False).replace("  size: 20\n", "  size: 20\n  size: 30\n"))
    with pytest.raises(ConfigError, match=r"dup.yaml: line \d+: duplicate key 'size' \(first given on line \d+\); "
                                          r"give each key once"):
        load(str(f))


def test_config_unknown_top_level_key_and_scheme_without_options():
    with pytest.raises(ConfigError, match=r"^unknown top-level key 'runn'; allowed keys are: model, ensemble"):
        parse(dict(GOOD, runn={}))
    with pytest.raises(ConfigError, match=r"^filter.options: unknown key 'lam'; ETKF takes no options$"):
        parse(changed("filter.options", {"lam": 1.0}))


def test_config_duplicate_indices_are_refused():
    with pytest.raises(ConfigError, match=r"observations.indices: \[2, 5\] listed more than once"):
        parse(changed("observations", {"field": "x", "indices": [5, 2, 5, 2, 7]}))


def test_config_restart_differences_name_each_changed_key():
    from fdassim.config import restart_differences

    base = parse(GOOD).result_settings()
    # defaults written out, a progress bar, another output path: the same result
    same = changed("filter.options", {})
    same["run"] = dict(same["run"], progress=False)
    same["output"] = {"path": "elsewhere.h5", "store_ensembles": False}
    assert restart_differences(base, parse(same).result_settings()) == []
    # run.cycles may grow (the store is extended), so it is not compared here
    assert restart_differences(base, parse(changed("run.cycles", 20)).result_settings()) == []
    other = changed("inflation", [{"multiplicative": {"lam": 1.05}}])
    other["run"] = dict(other["run"], seed=4)
    other["model"] = {"name": "lorenz96", "options": {"n": 40, "F": 8.5, "dt": 0.05}}
    diffs = restart_differences(base, parse(other).result_settings())
    assert diffs == ["inflation[0].multiplicative.lam: 1.02 (stored) -> 1.05 (now)",
                     "model.options.F: 8.0 (stored) -> 8.5 (now)", "run.seed: 3 (stored) -> 4 (now)"]


def test_config_restart_compares_the_observation_file_contents(tmp_path):
    from fdassim.config import restart_differences

    f = tmp_path / "obs.npz"
    np.savez(f, y=np.zeros((10, 20)))
    before = parse(changed("observations.file", str(f))).result_settings()
    np.savez(f, y=np.ones((10, 20)))
    diffs = restart_differences(before, parse(changed("observations.file", str(f))).result_settings())
    assert len(diffs) == 1 and diffs[0].startswith("observations.file (contents, sha256): ")


@pytest.mark.parametrize("value, product", [(None, "TILED"), ("ordered", "ORDERED"), ("petsc", "PETSC")])
def test_config_filter_product(value, product):
    data = changed("filter", {"scheme": "etkf", **({} if value is None else {"product": value})})
    s = parse(data)
    assert s.filter.product.name == product
    assert f"product: {s.filter.product.value}" in s.resolved()


def test_config_filter_product_rejects_unknown():
    with pytest.raises(ConfigError, match=r"filter.product: 'blas' is not allowed; choose one of 'tiled', 'ordered', 'petsc'"):
        parse(changed("filter", {"scheme": "etkf", "product": "blas"}))


def test_config_restart_compares_nested_observation_files(tmp_path):
    """A quantity's file under observations.quantities is compared by its contents too."""
    from fdassim.config import restart_differences

    f = tmp_path / "odd.nc"
    f.write_bytes(b"first")
    d = changed("observations", {"quantities": {"odd": {"field": "x", "file": str(f), "std": 1.0}}})
    before = parse(d).result_settings()
    f.write_bytes(b"second")
    diffs = restart_differences(before, parse(d).result_settings())
    assert len(diffs) == 1 and diffs[0].startswith("observations.quantities.odd.file (contents, sha256): ")


@pytest.mark.parametrize("path, value, match", [
    pytest.param("observations", {"quantities": {"a": {"field": "x", "std": -1.0}}},
                 r"observations.quantities.a.std: must be positive", id="quantity-std"),
    pytest.param("observations", {"field": "x", "quantities": {"a": {"field": "x", "every": 2}}},
                 r"observations: give either quantities or the one-quantity keys", id="both-forms"),
    pytest.param("observations", {"quantities": {"a": {"schedule": {"every": 0.0}}}},
                 r"observations.quantities.a.schedule: schedule.every: must be positive", id="schedule-every"),
    pytest.param("observations", {"quantities": {"a": {"shedule": {}}}},
                 r"observations.quantities.a: unknown key 'shedule'", id="quantity-unknown-key"),
    pytest.param("observations", {"every": 2, "points": [[0.5]]}, r"observations: give one of every, indices",
                 id="two-operators"),
    pytest.param("ensemble.initial_perturbations", {"x": {"model": "matern", "std": 1.0, "length": 2.0}},
                 r"ensemble.initial_perturbations.x.model: 'matern' is not allowed", id="field-model"),
    pytest.param("ensemble.initial_perturbations", {"x": {"model": "gaussian", "std": 1.0}},
                 r"ensemble.initial_perturbations.x.length: required for gaussian fields", id="field-length"),
    pytest.param("ensemble.model_noise", {"rho": 1.5, "fields": {"x": {"model": "gaussian", "std": 1.0, "length": 2.0}}},
                 r"ensemble.model_noise.rho: must be in \[0, 1\), got 1.5", id="noise-rho"),
    pytest.param("ensemble.model_noise", {"truth": 1, "fields": {"x": {"model": "gaussian", "std": 1.0, "length": 2.0}}},
                 r"ensemble.model_noise.truth: expected true or false, got 1", id="noise-truth"),
    pytest.param("ensemble.initial_perturbations", {"y": {"model": "gaussian", "std": 1.0, "length": 2.0}},
                 r"ensemble.initial_perturbations.y: not a field of the model; it has \['x'\]", id="field-name"),
    pytest.param("ensemble.model_noise", {"fields": {"y": {"model": "evensen", "std": 1.0, "length": 2.0}}},
                 r"ensemble.model_noise.fields.y: not a field of the model", id="noise-field-name"),
    pytest.param("parameters", [{"beta": {"field": "x", "observed": "bed"}}],
                 r"parameters\[0\].observed: 'bed' is not an observed quantity; choose one of \['x'\]",
                 id="parameter-observed"),
    pytest.param("parameters", [{"clip": {"field": "y", "lower": 0.0}}],
                 r"parameters\[0\].field: 'y' is not a field of the model", id="parameter-field"),
    pytest.param("parameters", [{"clamp": {"field": "x"}}], r"parameters\[0\]: 'clamp' is not known; choose one of "
                 r"clip, beta, under_relaxed", id="parameter-kind"),
])
def test_config_observations_perturbations_parameters_fail_naming_the_key(path, value, match):
    with pytest.raises(ConfigError, match=match):
        parse(changed(path, value))


def test_config_several_quantities_perturbations_parameters_build():
    d = changed("observations", {"quantities": {
        "odd": {"field": "x", "indices": [1, 3, 5], "std": 0.5, "schedule": {"start": 0.1, "every": 0.1}},
        "all": {"field": "x", "covariance": [[1.0]] , "outlier_threshold": 3.0}}})
    d["ensemble"]["initial_perturbations"] = {"x": {"model": "exponential", "std": 0.5, "length": 3.0}}
    d["ensemble"]["model_noise"] = {"rho": 0.8, "truth": False,
                                    "fields": {"x": {"model": "gaussian", "std": 0.1, "length": 2.0}}}
    d["parameters"] = [{"clip": {"field": "x", "lower": -20.0, "upper": 20.0}}]
    s = parse(d)
    assert set(s.observations.named()) == {"odd", "all"}
    assert s.observations.named()["odd"].schedule.every == 0.1
    assert s.make_model_noise().rho == 0.8 and s.make_model_noise().truth is False
    assert s.make_parameters()[0].upper == 20.0


def test_config_initial_perturbations_conditioned_on_an_observation_file(tmp_path):
    """``condition`` reads the file's first time of the quantity, with its std (or the one
    given); bad conditions fail naming the key or the file."""
    from fdassim.observations.files import write_observation_file

    path = str(tmp_path / "bed.nc")
    xy = np.array([[1.0, 2.0], [3.0, 4.0]])
    write_observation_file(path, {"x": {"value": [[5.0, 6.0], [7.0, 8.0]], "time": [0.05, 0.1], "position": xy,
                                        "std": 0.5},
                                  "plain": {"value": [[1.0, 2.0]], "time": [0.05], "position": xy},
                                  "indexed": {"value": [[1.0]], "time": [0.05], "index": [3]}})

    def perturbed(condition, model="gaussian", key="initial_perturbations"):
        d = copy.deepcopy(GOOD)
        spec = {"model": model, "std": 1.0, "length": 2.0, "condition": condition}
        d["ensemble"][key] = {"x": spec} if key == "initial_perturbations" else {"fields": {"x": spec}}
        return parse(d)

    obs = perturbed({"file": path}).make_initial_perturbations().conditions["x"]
    np.testing.assert_array_equal(obs.values, [5.0, 6.0])
    np.testing.assert_array_equal(obs.positions, xy)
    np.testing.assert_array_equal(obs.std, [0.5, 0.5])
    plain = perturbed({"file": path, "quantity": "plain", "std": 0.1}).make_initial_perturbations().conditions["x"]
    np.testing.assert_array_equal(plain.std, [0.1, 0.1])
    key = r"ensemble.initial_perturbations.x.condition"
    for condition, kwargs, match in [
        ({"file": str(tmp_path / "none.nc")}, {}, key + r": file: no such observation file '.*none.nc'"),
        ({"file": path, "std": 0.1}, {}, key + r".std: the errors are given both in .*bed.nc:/x and here"),
        ({"file": path, "quantity": "indexed"}, {}, key + r".file: .*bed.nc:/indexed gives index, not position"),
        ({"file": path, "quantity": "missing"}, {}, r".*bed.nc: no group 'missing'"),
        ({"file": path}, {"model": "evensen"}, key + r": kriging needs a gstools field"),
        ({"file": path}, {"key": "model_noise"}, r"ensemble.model_noise.fields.x.condition: model noise is not "
                                                 r"conditioned on observations"),
    ]:
        with pytest.raises(ConfigError, match=match):
            perturbed(condition, **kwargs)
