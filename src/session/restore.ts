/**
 * `imgdump restore`: after the checks (src/image/image-check.ts), pin the address layout and replace
 * this process with the image (execve via koffi), so the image keeps the CLI's PID and
 * terminal. What Node changed in its own process is undone first (exec-prepare.ts).
 */
import fs from 'node:fs'
import {ImgdumpError} from '../errors.js'
import {prepareProcessForExec} from '../native/exec-prepare.js'
import {ADDR_NO_RANDOMIZE, currentPersonality, execve, libc, setPersonality} from '../native/libc.js'

const F_GETFD = 1
const FD_CLOEXEC = 1

/**
 * The environment for the image: an inherited control socket (restore run under
 * `imgdump run`) is passed on only if its fd really survives the exec; otherwise the
 * variables would point the image at whatever Node has open at that number.
 */
function imageEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = {...env}
  const fd = Number(env.IMGDUMP_CONTROL_FD)
  const flags = Number.isInteger(fd) && fd >= 0 ? libc().fcntl(fd, F_GETFD, 0) : -1
  if (flags < 0 || (flags & FD_CLOEXEC) !== 0) {
    delete out.IMGDUMP_CONTROL_FD
    delete out.IMGDUMP_SESSION
  }
  return out
}

/** Replace this process with `image` (argv[0] = the image path). Returns only by throwing. */
export function execImage(image: string, args: string[]): never {
  try {
    fs.accessSync(image, fs.constants.X_OK)
  } catch {
    throw new ImgdumpError('io', 'IO_EACCES', `${image} is not executable`, {hint: `chmod u+x ${image}`})
  }
  // A seccomp profile may deny even the query (-1): then setting it reports the denial.
  const persona = currentPersonality()
  if (persona < 0) setPersonality(ADDR_NO_RANDOMIZE)
  else if ((persona & ADDR_NO_RANDOMIZE) === 0) setPersonality(persona | ADDR_NO_RANDOMIZE)
  const env = imageEnvironment(process.env)
  prepareProcessForExec()
  return execve(image, [image, ...args], env)
}
