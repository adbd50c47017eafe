# Keeper Gateway post-rotation script for the aws-ecr-pull-secret target on a Windows gateway. Attach this file
# to the PAM User record with no command: it runs the installed keeper-rotate.exe, which does the work, and the
# gateway's input line passes through on stdin. The program is $env:KEEPER_ROTATE_BIN if set, else
# %ProgramFiles%\keeper-rotate\keeper-rotate.exe, else keeper-rotate.exe on the PATH.
# Not tested: the build makes the win-x64 executable, but nothing here can run it (see the README).
$target = 'aws-ecr-pull-secret'
$installed = Join-Path $env:ProgramFiles 'keeper-rotate\keeper-rotate.exe'

# A value from the environment goes into a message only if it is all printable ASCII.
function Shown([string] $value) {
  if ($value -match '[^\x20-\x7e]') { '(a value with unprintable characters)' } else { $value }
}

# Exit 2 when there is no program to run: nothing was read or changed.
if ($env:KEEPER_ROTATE_BIN) {
  $program = $env:KEEPER_ROTATE_BIN
  if (-not (Test-Path -LiteralPath $program -PathType Leaf)) {
    [Console]::Error.WriteLine("keeper-rotate: BINARY_NOT_FOUND: KEEPER_ROTATE_BIN names $(Shown $program), which is not a file; install keeper-rotate there (see the README) or unset KEEPER_ROTATE_BIN; nothing was changed")
    exit 2
  }
} elseif (Test-Path -LiteralPath $installed -PathType Leaf) {
  $program = $installed
} else {
  $found = Get-Command -Name 'keeper-rotate.exe' -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
  if (-not $found) {
    [Console]::Error.WriteLine("keeper-rotate: BINARY_NOT_FOUND: keeper-rotate.exe is neither at $(Shown $installed) nor on the PATH; install it (see the README) or set KEEPER_ROTATE_BIN to its path; nothing was changed")
    exit 2
  }
  $program = $found.Source
}

# The gateway pipes its line in ("B64" | .\script.ps1); $input passes it on to the program's stdin.
$input | & $program $target @args
exit $LASTEXITCODE
