function value = fdassim_eval(fdassim_code__, fdassim_name__)
%FDASSIM_EVAL  Run the statements CODE in a workspace of their own; return the variable NAME.
%
%   A request whose reply carries a value must be one expression; this turns statements
%   into one: fdassim_eval('md = flowline_model(); x = md.mesh.x;', 'x').
  eval([fdassim_code__ ';']);
  value = eval(fdassim_name__);
end
