import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {linkFlags, pkgConfig, shellQuote} from '../config/link-flags.js'

export interface ConfigResult {
  cflags?: string[]
  libs?: string[]
  pc?: string
  library: string
  shared: boolean
}

export default class Config extends BaseCommand {
  static override description = `Print the compiler and linker flags for building a program with libimgdump

Static by default: the whole libimgdump.a is linked, so its malloc replaces the C library's
even in a program that never calls malloc itself. --shared links libimgdump.so instead.
--pc prints a pkg-config file (imgdump.pc) with the same flags.`

  static override examples = [
    'cc prog.c $(<%= config.bin %> config --cflags --libs)',
    'cc prog.c $(<%= config.bin %> config --cflags --libs --shared)',
    '<%= config.bin %> config --pc > /usr/local/lib/pkgconfig/imgdump.pc',
  ]

  static override flags = {
    cflags: Flags.boolean({description: 'print the compiler flags (include path)'}),
    libs: Flags.boolean({description: 'print the linker flags'}),
    shared: Flags.boolean({description: 'link the shared library instead of the static archive'}),
    pc: Flags.boolean({description: 'print a pkg-config file (imgdump.pc)', exclusive: ['cflags', 'libs']}),
  }

  async run(): Promise<ConfigResult> {
    const {flags} = await this.parse(Config)
    const f = linkFlags(flags.shared)
    const result: ConfigResult = {library: f.library, shared: flags.shared}
    if (flags.pc) {
      result.pc = pkgConfig(this.config.version, flags.shared)
      if (!this.jsonEnabled()) process.stdout.write(result.pc)
      return result
    }
    const both = !flags.cflags && !flags.libs
    if (flags.cflags || both) result.cflags = f.cflags
    if (flags.libs || both) result.libs = f.libs
    if (!this.jsonEnabled()) this.log([...(result.cflags ?? []), ...(result.libs ?? [])].map(shellQuote).join(' '))
    return result
  }
}
