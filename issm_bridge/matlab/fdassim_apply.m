function md = fdassim_apply(md, s)
%FDASSIM_APPLY  MD with every field of the member file S written at its md path.
%
%   S.fields.(name) is the value, S.paths.(name) its dotted md path.
  names = fieldnames(s.fields);
  for k = 1:numel(names)
    name = names{k};
    md = fdassim_set(md, s.paths.(name), s.fields.(name)(:));
  end
end
