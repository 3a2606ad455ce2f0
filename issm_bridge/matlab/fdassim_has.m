function ok = fdassim_has(x, name)
%FDASSIM_HAS  True if the struct or object X has a field or property NAME.
  ok = (isstruct(x) && isfield(x, name)) || (isobject(x) && isprop(x, name));
end
