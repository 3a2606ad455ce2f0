function md = fdassim_set(md, path, value)
%FDASSIM_SET  MD with the field at the dotted PATH (e.g. 'geometry.thickness') set to VALUE.
  parts = strsplit(path, '.');
  md = set_parts(md, parts, value, path);
end

function x = set_parts(x, parts, value, path)
  name = parts{1};
  if numel(parts) == 1
    x.(name) = value;
    return;
  end
  if ~fdassim_has(x, name)
    error('issm_bridge:field', 'md has no field %s (setting md.%s)', name, path);
  end
  x.(name) = set_parts(x.(name), parts(2:end), value, path);
end
