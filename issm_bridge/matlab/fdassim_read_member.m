function s = fdassim_read_member(path, cycle, member)
%FDASSIM_READ_MEMBER  Load a member file and check that it belongs to CYCLE and MEMBER.
%
%   A file of another cycle or member (a stale file) is an error, never silently read.
  if exist(path, 'file') ~= 2
    error('issm_bridge:missing', 'member %d, cycle %d: no file %s', member, cycle, path);
  end
  s = load(path);
  if ~isfield(s, 'fdassim_format') || s.fdassim_format ~= 1
    error('issm_bridge:format', '%s is not an issm_bridge member file of format 1', path);
  end
  if s.cycle ~= cycle || s.member ~= member
    error('issm_bridge:stale', ['%s belongs to cycle %d, member %d, not cycle %d, member %d ' ...
          '(a stale file)'], path, s.cycle, s.member, cycle, member);
  end
end
