function md = fdassim_model(job)
%FDASSIM_MODEL  The model JOB.setup describes, built once per server and reused.
%
%   JOB.setup is a .mat file holding a variable md (ISSM's saved model, or any struct
%   with md's field names), or the name of a function returning md; JOB.setup_options,
%   when not empty, is passed to that function.
  persistent cache
  if isempty(cache)
    cache = struct('key', {}, 'md', {});
  end
  key = job.setup;
  if isfield(job, 'setup_options') && isstruct(job.setup_options)
    key = [key '|' fdassim_describe_struct(job.setup_options)];
  end
  for k = 1:numel(cache)
    if strcmp(cache(k).key, key)
      md = cache(k).md;
      return;
    end
  end
  [~, ~, ext] = fileparts(job.setup);
  if strcmp(ext, '.mat')
    s = load(job.setup);
    if ~isfield(s, 'md')
      error('issm_bridge:setup', '%s holds no variable md', job.setup);
    end
    md = s.md;
  elseif isfield(job, 'setup_options') && isstruct(job.setup_options)
    md = feval(job.setup, job.setup_options);
  else
    md = feval(job.setup);
  end
  cache(end + 1) = struct('key', key, 'md', md);
end

function text = fdassim_describe_struct(s)
  names = sort(fieldnames(s));
  text = '';
  for k = 1:numel(names)
    v = s.(names{k});
    if ischar(v)
      text = [text names{k} '=' v ';']; %#ok<AGROW>
    else
      text = [text names{k} '=' sprintf('%.17g,', v) ';']; %#ok<AGROW>
    end
  end
end
