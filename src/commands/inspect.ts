import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {describeFile, type FileDescription} from '../inspect/describe-file.js'

export default class Inspect extends BaseCommand {
  static override description = `Describe an executable or image: format, kind, entry, interpreter, libraries, build-id, segments, sections

ELF and Mach-O (also fat/universal) executables and libraries; for imgdump images also the
manifest (generation, runtime, libraries, segments), compatibility with this machine and a
summary of the saved heap by size class.`

  static override examples = [
    '<%= config.bin %> inspect /bin/ls',
    '<%= config.bin %> inspect ./myimage --json',
    '<%= config.bin %> inspect ./universal-binary --arch arm64',
  ]

  static override args = {
    file: Args.string({description: 'file to describe', required: true}),
  }

  static override flags = {
    arch: Flags.string({description: 'Mach-O fat files: the slice to describe (x86_64, arm64)'}),
  }

  async run(): Promise<FileDescription> {
    const {args, flags} = await this.parse(Inspect)
    const {object, text} = describeFile(args.file, {arch: flags.arch})
    if (!this.jsonEnabled()) process.stdout.write(text)
    return object
  }
}
