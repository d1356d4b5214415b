import {Args} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {describeFile, type FileDescription} from '../inspect/describe-file.js'
import {renderElfText} from '../inspect/render-text.js'
import {describeImage, isImageFile, type ImageDescription} from '../image/describe-image.js'

export default class Inspect extends BaseCommand {
  static override description = 'Describe an executable or image: format, kind, entry, interpreter, libraries, build-id, segments, sections'
  static override examples = [
    '<%= config.bin %> inspect /bin/ls',
    '<%= config.bin %> inspect ./myimage --json',
  ]
  static override args = {
    file: Args.string({description: 'file to describe', required: true}),
  }

  async run(): Promise<FileDescription | ImageDescription> {
    const {args} = await this.parse(Inspect)
    // Images first: their heap reservation PT_LOAD lies past the end of the file by design.
    if (isImageFile(args.file)) {
      const {object, text} = describeImage(args.file)
      if (!this.jsonEnabled()) process.stdout.write(text)
      return object
    }
    const d = describeFile(args.file)
    if (!this.jsonEnabled()) process.stdout.write(renderElfText(args.file, d))
    return d
  }
}
