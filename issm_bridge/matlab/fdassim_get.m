function value = fdassim_get(md, path)
%FDASSIM_GET  The field of MD at the dotted PATH, e.g. 'geometry.thickness'.
  value = md;
  parts = strsplit(path, '.');
  for k = 1:numel(parts)
    if ~fdassim_has(value, parts{k})
      error('issm_bridge:field', 'md has no field %s (looking for md.%s)', ...
            strjoin(parts(1:k), '.'), path);
    end
    value = value.(parts{k});
  end
end

