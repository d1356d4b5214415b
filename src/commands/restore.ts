import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {checkImage} from '../image/image-check.js'
import {execImage} from '../session/restore.js'

export default class Restore extends BaseCommand {
  static override description = `Check an image, then run it in place of this process

Checks that the file is an imgdump image whose structure holds and whose shared libraries
are still present with the same build-id (exit 8 naming the one that changed), pins the
address layout (personality ADDR_NO_RANDOMIZE; exit 8 if a seccomp profile denies it) and
execve's the image with the given arguments, so it takes over this terminal and PID.
--verify first checks every payload checksum (exit 7 on a mismatch). Running the image
directly (./image args) skips Node's start-up and is the faster way where that matters.`

  static override examples = [
    '<%= config.bin %> restore work.img',
    '<%= config.bin %> restore --verify work.img -- --batch job.lisp',
  ]

  static override enableJsonFlag = false
  static override strict = false
  static override flags = {
    verify: Flags.boolean({description: 'check every payload checksum before running the image'}),
  }

  static override args = {
    image: Args.string({description: 'the image to run, then (after `--`) its arguments', required: true}),
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Restore)
    const [image, ...args] = argv as string[]
    const abs = path.resolve(image)
    checkImage(abs, flags.verify)
    execImage(abs, args)
  }
}
