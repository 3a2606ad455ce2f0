function result = fdassim_describe(job_path)
%FDASSIM_DESCRIBE  The set-up model's vertices and initial fields, for Python.
%
%   JOB_PATH holds job (setup, setup_options) and paths (field name -> md path).
%   Returns x, y (md.mesh.x, md.mesh.y; y = 0 for a flowline) and fields.(name), the
%   value at each path.
  s = load(job_path);
  if exist(s.job.solver) == 0 %#ok<EXIST>
    error('issm_bridge:solver', ['%s is not on this server''s path: the issm back end needs ISSM ' ...
          '(ISSM_DIR set; a pool from issm-bridge start needs --issm)'], s.job.solver);
  end
  md = fdassim_model(s.job);
  result.x = double(md.mesh.x(:));
  if fdassim_has(md.mesh, 'y')
    result.y = double(md.mesh.y(:));
  else
    result.y = zeros(size(result.x));
  end
  result.fields = struct();
  names = fieldnames(s.paths);
  for k = 1:numel(names)
    value = fdassim_get(md, s.paths.(names{k}));
    result.fields.(names{k}) = double(value(:));
  end
end
